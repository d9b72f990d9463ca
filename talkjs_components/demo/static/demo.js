// Browser-side pieces of the demo app: the sign-in form, and keeping the
// signed-in user's token in sessionStorage so each browser window (tab) can
// be signed in as a different user and stays signed in across reloads.
import React, { useEffect, useState } from "react";

const h = React.createElement;
const STORAGE_KEY = "talkjs-components-demo-token";

function readToken() {
  try {
    return window.sessionStorage.getItem(STORAGE_KEY);
  } catch (error) {
    return null;
  }
}

// Reports the stored token whenever `layoutId` changes, which is on mount and
// after ReactPy reconnects with a fresh server-side tree; then mirrors the
// `token` prop into storage: a string stores it, null removes it, undefined
// leaves it alone.
export function TokenStore({ token, layoutId, onRestore }) {
  useEffect(() => {
    onRestore({ token: readToken() });
  }, [layoutId]);
  useEffect(() => {
    if (token === undefined) return;
    try {
      if (token === null) window.sessionStorage.removeItem(STORAGE_KEY);
      else window.sessionStorage.setItem(STORAGE_KEY, token);
    } catch (error) {
      // Storage can be disabled; the user then signs in again after a reload.
    }
  }, [token]);
  return null;
}

export function SignInForm({ onSignIn, userLabel, buttonLabel, hint }) {
  const [user, setUser] = useState("");
  const submit = (event) => {
    event.preventDefault();
    onSignIn({ user: user.trim() });
  };
  return h(
    "form",
    { className: "demo-signin", onSubmit: submit },
    h("label", { htmlFor: "demo-user" }, userLabel),
    h("input", {
      id: "demo-user",
      name: "user",
      autoComplete: "username",
      value: user,
      autoFocus: true,
      onInput: (event) => setUser(event.target.value),
    }),
    h("button", { type: "submit" }, buttonLabel),
    h("p", { className: "demo-hint" }, hint),
  );
}
