// Browser-side pieces of the Inbox and Popup components, loaded by ReactPy as
// a JS module. "react" resolves to the Preact build that ReactPy ships, so
// this file needs no bundler and no network access.
import React, { useEffect, useLayoutEffect, useRef, useState } from "react";

const h = React.createElement;
const STYLE_ID = "talkjs-boxes-style";

// Injected once per page. The Inbox is a size container: below 640 px of its
// own width it shows one pane at a time. Which pane is chosen by the
// tjs-inbox--chat-open class, which Python sets while a conversation is selected.
const STYLES = `
.tjs-inbox, .tjs-popup { --tjs-accent: #2b6cb0; --tjs-bg: #ffffff; --tjs-fg: #1a202c;
  --tjs-muted: #5a6577; --tjs-selected-bg: #e6f0fb; --tjs-hover-bg: #f1f3f6;
  --tjs-border: #d5dae1; --tjs-radius: 10px; --tjs-font: system-ui, sans-serif;
  font-family: var(--tjs-font); color: var(--tjs-fg); }
.tjs-visually-hidden { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }

.tjs-inbox { container-type: inline-size; container-name: tjs-inbox; display: flex;
  height: 100%; min-height: 400px; background: var(--tjs-bg);
  border: 1px solid var(--tjs-border); border-radius: var(--tjs-radius); overflow: hidden; }
/* ReactPy wraps each JS component in a span, which must not take room. */
.tjs-inbox > span { display: none; }
.tjs-inbox__feed { flex: 0 0 320px; min-width: 0; display: flex; flex-direction: column;
  border-inline-end: 1px solid var(--tjs-border); }
.tjs-inbox__feed-header { margin: 0; padding: 12px 14px; font-weight: 600; font-size: 1.05em;
  border-bottom: 1px solid var(--tjs-border); }
.tjs-inbox__chat { flex: 1; min-width: 0; display: flex; flex-direction: column; }
.tjs-inbox__chat > .tjs-chatbox { flex: 1; border: 0; border-radius: 0; min-height: 0; }
.tjs-inbox__back { display: none; align-self: flex-start; margin: 6px; font: inherit;
  padding: 4px 10px; border: 1px solid var(--tjs-border); border-radius: 6px;
  background: var(--tjs-bg); color: var(--tjs-fg); cursor: pointer; }
.tjs-inbox__back::before { content: "\\2190\\00a0"; }
.tjs-inbox__back:focus-visible { outline: 2px solid var(--tjs-accent); outline-offset: 2px; }
.tjs-feed { list-style: none; margin: 0; padding: 0; overflow-y: auto; flex: 1; }
.tjs-feed__item { margin: 0; }
.tjs-feed__item[hidden] { display: none; }
.tjs-feed__button { display: grid; grid-template-columns: auto minmax(0, 1fr) auto;
  grid-template-areas: "avatar title time" "avatar preview badge"; column-gap: 10px;
  row-gap: 2px; align-items: center; width: 100%; padding: 10px 14px; border: 0;
  border-bottom: 1px solid var(--tjs-border); background: none; color: inherit; font: inherit;
  text-align: start; cursor: pointer; }
.tjs-feed__button:hover { background: var(--tjs-hover-bg); }
.tjs-feed__button[aria-current="true"] { background: var(--tjs-selected-bg); }
.tjs-feed__button:focus-visible { outline: 2px solid var(--tjs-accent); outline-offset: -2px; }
.tjs-feed__avatar { grid-area: avatar; width: 40px; height: 40px; border-radius: 50%;
  object-fit: cover; display: inline-flex; align-items: center; justify-content: center;
  background: var(--tjs-border); font-weight: 600; font-size: 0.85em; }
.tjs-feed__title { grid-area: title; font-weight: 600; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; }
.tjs-feed__time { grid-area: time; font-size: 0.75em; color: var(--tjs-muted); }
.tjs-feed__time > span { display: contents; }
.tjs-feed__preview { grid-area: preview; font-size: 0.9em; color: var(--tjs-muted);
  overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.tjs-feed__badge { grid-area: badge; min-width: 1.5em; padding: 1px 6px; border-radius: 999px;
  background: var(--tjs-accent); color: #fff; font-size: 0.75em; font-weight: 600;
  text-align: center; }
.tjs-feed__item--unread .tjs-feed__preview { color: var(--tjs-fg); }
.tjs-inbox .tjs-empty, .tjs-inbox .tjs-loading { color: var(--tjs-muted); padding: 16px; }
.tjs-inbox .tjs-error { color: #9b1c1c; padding: 8px 14px; }

@container tjs-inbox (max-width: 639px) {
  .tjs-inbox__feed { flex: 1 1 auto; border-inline-end: 0; }
  .tjs-inbox--chat-open .tjs-inbox__feed { display: none; }
  .tjs-inbox:not(.tjs-inbox--chat-open) .tjs-inbox__chat { display: none; }
  .tjs-inbox__back { display: inline-block; }
}

.tjs-popup__launcher { position: fixed; inset-inline-end: 20px; bottom: 20px; z-index: 2147483000;
  display: inline-flex; align-items: center; justify-content: center; gap: 6px;
  min-width: 56px; height: 56px; padding: 0 16px; border: 0; border-radius: 999px;
  background: var(--tjs-accent); color: #fff; font: inherit; font-weight: 600; cursor: pointer;
  box-shadow: 0 4px 14px rgba(0, 0, 0, 0.25); }
.tjs-popup__launcher:focus-visible { outline: 3px solid var(--tjs-fg); outline-offset: 3px; }
.tjs-popup__icon::before { content: "\\1F4AC"; font-size: 1.4em; }
.tjs-popup--open .tjs-popup__icon::before { content: "\\2715"; font-size: 1.1em; }
.tjs-popup__count { min-width: 1.4em; padding: 1px 6px; border-radius: 999px; background: #fff;
  color: var(--tjs-accent); font-size: 0.8em; text-align: center; }
.tjs-popup__panel { position: fixed; inset-inline-end: 20px; bottom: 88px; z-index: 2147483000;
  width: min(380px, calc(100vw - 24px)); height: min(560px, calc(100vh - 112px));
  display: flex; flex-direction: column; background: var(--tjs-bg);
  border: 1px solid var(--tjs-border); border-radius: var(--tjs-radius); overflow: hidden;
  box-shadow: 0 8px 30px rgba(0, 0, 0, 0.25); }
.tjs-popup--no-launcher .tjs-popup__panel { bottom: 20px; height: min(560px, calc(100vh - 40px)); }
.tjs-popup__bar { display: flex; justify-content: flex-end; padding: 4px;
  border-bottom: 1px solid var(--tjs-border); }
.tjs-popup__close { font: inherit; padding: 2px 10px; border: 0; border-radius: 6px;
  background: none; color: var(--tjs-fg); cursor: pointer; }
.tjs-popup__close:hover { background: var(--tjs-hover-bg); }
.tjs-popup__close:focus-visible { outline: 2px solid var(--tjs-accent); outline-offset: 1px; }
.tjs-popup__panel > .tjs-chatbox { flex: 1; border: 0; border-radius: 0; min-height: 0; }
.tjs-popup .tjs-error { color: #9b1c1c; padding: 8px 14px; }
`;

function injectStyles() {
  if (typeof document === "undefined" || document.getElementById(STYLE_ID)) return;
  const style = document.createElement("style");
  style.id = STYLE_ID;
  style.textContent = STYLES;
  document.head.appendChild(style);
}
injectStyles();

function isVisible(element) {
  return Boolean(element && element.isConnected && element.getClientRects().length > 0);
}

// One timer for every relative time on the page, running only while some are mounted.
const minuteListeners = new Set();
let minuteTimer = null;

function onEveryMinute(listener) {
  minuteListeners.add(listener);
  if (minuteTimer === null) {
    minuteTimer = window.setInterval(() => minuteListeners.forEach((each) => each()), 60_000);
  }
  return () => {
    minuteListeners.delete(listener);
    if (minuteListeners.size === 0 && minuteTimer !== null) {
      window.clearInterval(minuteTimer);
      minuteTimer = null;
    }
  };
}

function formatUnit(value, unit) {
  try {
    return new Intl.NumberFormat(undefined, { style: "unit", unit, unitDisplay: "short" }).format(value);
  } catch (error) {
    return `${value} ${unit === "minute" ? "min" : "h"}`;
  }
}

// A compact age in the reader's locale: "now", "5 min", "3 hr", a weekday
// within the last week, then a date.
function relativeLabel(ms, now, nowLabel) {
  const minutes = Math.floor((now - ms) / 60_000);
  if (minutes < 1) return nowLabel;
  if (minutes < 60) return formatUnit(minutes, "minute");
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return formatUnit(hours, "hour");
  const date = new Date(ms);
  if (hours < 24 * 6) return date.toLocaleDateString([], { weekday: "short" });
  if (date.getFullYear() === new Date(now).getFullYear()) {
    return date.toLocaleDateString([], { month: "short", day: "numeric" });
  }
  return date.toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" });
}

// The time of a conversation's last activity, relative to now and updated every minute.
export function FeedTime({ ms, nowLabel }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => onEveryMinute(() => setNow(Date.now())), []);
  const date = new Date(ms);
  return h(
    "time",
    { dateTime: date.toISOString(), title: date.toLocaleString(), dir: "auto" },
    relativeLabel(ms, Math.max(now, Date.now()), nowLabel),
  );
}

// Keeps keyboard focus on the same conversation when the feed reorders.
// ReactPy (2.0.0b13) wraps each component in an unkeyed fragment, so the
// browser does not move a reordered feed item: it replaces the item's DOM
// node, and focus on the removed node would fall back to the page's body.
// Focus moves to the new node of the same conversation instead.
function useFeedFocusKept(ref) {
  useEffect(() => {
    const root = ref.current && ref.current.closest(".tjs-inbox");
    if (!root) return undefined;
    let focused = null;
    let focusedId = null;
    const follow = (element) => {
      const item = root.contains(element) ? element.closest("[data-conversation-id]") : null;
      focused = item ? element : null;
      focusedId = item ? item.dataset.conversationId : null;
    };
    // The JS module can load after the feed has rendered and been focused.
    follow(document.activeElement);
    const onFocusIn = (event) => follow(event.target);
    const observer = new MutationObserver(() => {
      const active = document.activeElement;
      if (!focused || focused.isConnected || (active && active !== document.body)) return;
      focused = null;
      const next = root.querySelector(`[data-conversation-id="${CSS.escape(focusedId)}"] button`);
      if (isVisible(next)) next.focus();
    });
    root.addEventListener("focusin", onFocusIn);
    observer.observe(root, { childList: true, subtree: true });
    return () => {
      root.removeEventListener("focusin", onFocusIn);
      observer.disconnect();
    };
  }, []);
}

// Moves focus when the Inbox switches panes and the focused element was
// hidden with its pane (narrow layouts only): to the Back button when a
// conversation opens, and to the conversation's feed item on the way back.
// Python bumps `token` for each switch the user asked for. Also keeps focus
// on a conversation whose feed item is replaced (useFeedFocusKept).
export function InboxFocus({ token, target, conversationId }) {
  const ref = useRef(null);
  useFeedFocusKept(ref);
  useEffect(() => {
    if (!token || !ref.current) return;
    const root = ref.current.closest(".tjs-inbox");
    if (!root) return;
    const active = document.activeElement;
    if (active && active !== document.body && root.contains(active) && isVisible(active)) return;
    let next = null;
    if (target === "feed" && conversationId) {
      const escaped = window.CSS && CSS.escape ? CSS.escape(conversationId) : conversationId;
      next = root.querySelector(`[data-conversation-id="${escaped}"] button`);
    } else if (target === "chat") {
      next = root.querySelector(".tjs-inbox__back");
    }
    if (isVisible(next)) next.focus();
  }, [token]);
  return h("span", { ref, hidden: true });
}

function readStorage(key) {
  try {
    return window.sessionStorage.getItem(key);
  } catch (error) {
    return null; // Storage can be blocked by the browser's privacy settings.
  }
}

function writeStorage(key, value) {
  try {
    if (value === null) window.sessionStorage.removeItem(key);
    else window.sessionStorage.setItem(key, value);
  } catch (error) {
    // Without storage, keep_open has no effect.
  }
}

// Browser-side behaviour of a Popup:
// - reports on mount whether sessionStorage records the popup as open
//   (onRestore({open})), and stores the open state while `keepOpen` is set.
// - closes on Escape pressed inside the popup or on the page body (onEscape).
// - after closing, moves focus that the closed panel took with it to the
//   launcher, or, without a launcher, back to where it was before opening.
export function PopupController({ open, keepOpen, storageKey, instance, ready, onRestore, onEscape }) {
  const ref = useRef(null);
  const focusBeforeOpen = useRef(null);
  const wasOpen = useRef(open);

  // `instance` changes when Python mounts a new popup state in the same
  // place. The browser keeps this component mounted then, because ReactPy
  // sends no keys, so the stored state is reported again to the new one.
  useEffect(() => {
    onRestore({ open: readStorage(storageKey) === "1" });
  }, [storageKey, instance]);

  // A layout effect, so the state is stored before the page can unload.
  // Until Python has seen the report, only an open state is stored, because
  // removing the key then could drop the state that is being restored.
  useLayoutEffect(() => {
    const stored = keepOpen && open ? "1" : null;
    if (ready || stored !== null) writeStorage(storageKey, stored);
  }, [ready, keepOpen, open, storageKey]);

  useEffect(() => {
    if (!open) return undefined;
    const onKeyDown = (event) => {
      if (event.key !== "Escape" || event.defaultPrevented) return;
      const root = ref.current && ref.current.closest(".tjs-popup");
      const active = document.activeElement;
      if (!root || !(active === document.body || root.contains(active))) return;
      onEscape({});
    };
    document.addEventListener("keydown", onKeyDown);
    return () => document.removeEventListener("keydown", onKeyDown);
  }, [open]);

  useEffect(() => {
    const root = ref.current && ref.current.closest(".tjs-popup");
    if (open && !wasOpen.current) {
      const active = document.activeElement;
      focusBeforeOpen.current = root && root.contains(active) ? null : active;
    } else if (!open && wasOpen.current && root) {
      const active = document.activeElement;
      const lost = !active || active === document.body || !isVisible(active);
      if (lost) {
        const launcher = root.querySelector(".tjs-popup__launcher");
        const next = isVisible(launcher) ? launcher : focusBeforeOpen.current;
        if (isVisible(next)) next.focus();
      }
      focusBeforeOpen.current = null;
    }
    wasOpen.current = open;
  }, [open]);

  return h("span", { ref, hidden: true });
}
