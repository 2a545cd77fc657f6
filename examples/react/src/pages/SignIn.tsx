// Signing in. A real app signs in with its identity provider; `make run` adds a one-click
// development sign-in, and any deployment can paste a token (`python main.py dev-token`).
import { type FormEvent, useState } from "react";

import { devSignIn, signIn, signOutNotice } from "../auth";
import { config } from "../config";

export function SignIn() {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const notice = signOutNotice();

  const oneClick = (): void => {
    setBusy(true);
    setError(null);
    devSignIn().catch((e: unknown) => {
      setBusy(false);
      setError(e instanceof Error ? e.message : String(e));
    });
  };

  const pasted = (event: FormEvent): void => {
    event.preventDefault();
    if (token.trim().split(".").length !== 3) {
      setError("That is not a JWT: it should be three parts separated by dots.");
      return;
    }
    signIn(token);
  };

  return (
    <main className="signin">
      <section className="card">
        <h1>Sign in</h1>
        {notice && (
          <p className="notice" data-testid="signed-out-notice" role="status">
            {notice}
          </p>
        )}
        {config.devSignIn && (
          <button type="button" className="primary" data-testid="dev-sign-in" disabled={busy} onClick={oneClick}>
            {busy ? "Signing in..." : "Sign in as the demo org's owner (make run)"}
          </button>
        )}
        <form onSubmit={pasted}>
          <label htmlFor="token">Or paste a token from your identity provider</label>
          <textarea
            id="token"
            data-testid="token-input"
            rows={3}
            value={token}
            onChange={(e) => setToken(e.target.value)}
            placeholder="eyJhbGciOi..."
          />
          <button type="submit" data-testid="token-sign-in">
            Sign in with this token
          </button>
        </form>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </section>
    </main>
  );
}
