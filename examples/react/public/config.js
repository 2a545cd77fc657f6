// Runtime settings of the example app. `make run` serves its own version of this file (the
// API's real address, and the one-click development sign-in); a deployment replaces it.
window.BILLING_CONFIG = {
  apiUrl: "http://127.0.0.1:8000/graphql",
  devSignIn: false,
};
