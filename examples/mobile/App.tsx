// The app's shell: a signed-in user (its token from the identity provider) sees the billing
// screen. For a local try, paste a token from `python main.py dev-token --org ORG`.
import { StatusBar } from "expo-status-bar";
import { useState } from "react";
import { Button, StyleSheet, TextInput, View } from "react-native";

import { setToken } from "./src/auth";
import { BillingScreen } from "./src/BillingScreen";

export default function App() {
  const [signedIn, setSignedIn] = useState(false);
  const [typed, setTyped] = useState("");
  return (
    <View style={styles.app}>
      <StatusBar style="auto" />
      {signedIn ? (
        <BillingScreen />
      ) : (
        <>
          <TextInput
            style={styles.input}
            placeholder="Paste a token (python main.py dev-token --org ORG)"
            autoCapitalize="none"
            autoCorrect={false}
            value={typed}
            onChangeText={setTyped}
          />
          <Button
            title="Sign in"
            disabled={typed.trim() === ""}
            onPress={() => {
              setToken(typed.trim());
              setSignedIn(true);
            }}
          />
        </>
      )}
    </View>
  );
}

const styles = StyleSheet.create({
  app: { flex: 1, padding: 16, justifyContent: "center" },
  input: { borderWidth: 1, borderColor: "#d0d7de", borderRadius: 6, padding: 8, marginBottom: 8 },
});
