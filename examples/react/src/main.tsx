import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter, NavLink, Navigate, Route, Routes } from "react-router";
import { type Client, Provider } from "urql";

import { signOut, useToken } from "./auth";
import { makeClient } from "./client";
import { RequiredActionBanner } from "./components/RequiredActionBanner";
import { BILLING_PATH } from "./config";
import { EntitlementProvider } from "./live";
import { BillingPage } from "./pages/BillingPage";
import { PricingPage } from "./pages/PricingPage";
import { SignIn } from "./pages/SignIn";
import "./styles.css";

/** One client per signed-in token: a new token opens a new WebSocket with it. */
function useClient(token: string | null): Client | null {
  const [client, setClient] = useState<Client | null>(null);
  useEffect(() => {
    if (token === null) {
      setClient(null);
      return;
    }
    const made = makeClient();
    setClient(made.client);
    return made.dispose;
  }, [token]);
  return client;
}

function App() {
  const token = useToken();
  const client = useClient(token);
  if (token === null) return <SignIn />;
  if (client === null) return null;
  return (
    <Provider value={client}>
      <EntitlementProvider>
        <header className="top">
          <strong>Example app</strong>
          <nav>
            <NavLink to={BILLING_PATH}>Billing</NavLink>
            <NavLink to="/pricing">Pricing</NavLink>
          </nav>
          <button type="button" className="link" data-testid="sign-out" onClick={() => signOut()}>
            Sign out
          </button>
        </header>
        <main>
          <RequiredActionBanner />
          <Routes>
            <Route path={BILLING_PATH} element={<BillingPage />} />
            <Route path="/pricing" element={<PricingPage />} />
            <Route path="*" element={<Navigate to={BILLING_PATH} replace />} />
          </Routes>
        </main>
      </EntitlementProvider>
    </Provider>
  );
}

const root = document.getElementById("root");
if (root === null) throw new Error("index.html has no #root");
createRoot(root).render(
  <StrictMode>
    <BrowserRouter>
      <App />
    </BrowserRouter>
  </StrictMode>,
);
