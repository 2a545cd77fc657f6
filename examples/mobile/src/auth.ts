// The signed-in user's token for the billing API (a JWT with the org and role claims the API
// is configured for). A real app gets it from its identity provider's SDK; for a local try,
// paste the output of `python main.py dev-token --org ORG`.
let token: string | null = null;

export function setToken(value: string | null): void {
  token = value;
}

export function currentToken(): string | null {
  return token;
}
