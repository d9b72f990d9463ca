// Browser-side pieces of talkjs-components, loaded by ReactPy as a JS module.
// "react" resolves to the Preact build that ReactPy ships, so this file needs
// no bundler and no network access.
import React, { memo, useEffect, useLayoutEffect, useRef, useState } from "react";

const h = React.createElement;
const STYLE_ID = "talkjs-components-style";

// Styles are injected once per page, so components work in any host page.
// Colours and sizes are CSS custom properties that apps override to theme.
const STYLES = `
.tjs-chatbox { --tjs-accent: #2b6cb0; --tjs-bg: #ffffff; --tjs-fg: #1a202c;
  --tjs-muted: #5a6577; --tjs-own-bg: #e6f0fb; --tjs-other-bg: #f1f3f6;
  --tjs-border: #d5dae1; --tjs-radius: 10px; --tjs-font: system-ui, sans-serif;
  display: flex; flex-direction: column; height: 100%; min-height: 320px;
  background: var(--tjs-bg); color: var(--tjs-fg); font-family: var(--tjs-font);
  border: 1px solid var(--tjs-border); border-radius: var(--tjs-radius); overflow: hidden; }
/* ReactPy wraps each JS component in a span; let its content take part in the flex layout. */
.tjs-chatbox > span { display: contents; }
.tjs-chatbox__header { padding: 10px 14px; border-bottom: 1px solid var(--tjs-border);
  font-weight: 600; }
.tjs-chatbox__header small { display: block; font-weight: 400; color: var(--tjs-muted); }
.tjs-log-frame { flex: 1; position: relative; min-height: 0; display: flex; }
/* Rows space themselves with margins: empty blocks must take no room at all. */
/* MessageLog keeps the reader's place itself; the browser's scroll anchoring would shift twice. */
.tjs-log { flex: 1; overflow-y: auto; padding: 4px 14px 10px; display: flex;
  flex-direction: column; overflow-anchor: none; }
.tjs-block { display: flex; flex-direction: column; }
.tjs-row { margin-top: 6px; }
.tjs-block:empty, .tjs-list-status { display: none; }
.tjs-day { align-self: center; text-align: center; font-size: 0.75em; color: var(--tjs-muted); margin: 8px 0 2px; }
.tjs-new-messages { position: absolute; bottom: 10px; left: 50%; transform: translateX(-50%);
  font: inherit; font-size: 0.85em; padding: 4px 12px; border-radius: 999px; border: 0;
  background: var(--tjs-accent); color: #fff; cursor: pointer; }
.tjs-avatar { width: 20px; height: 20px; border-radius: 50%; object-fit: cover; }
.tjs-avatar--initials { display: inline-flex; align-items: center; justify-content: center;
  background: var(--tjs-border); color: var(--tjs-fg); font-size: 0.65em; font-weight: 600; }
.tjs-row:has(.tjs-message--grouped) { margin-top: 2px; }
.tjs-message--grouped .tjs-message__meta { display: none; }
.tjs-message__edited, .tjs-message__receipt { font-style: italic; }
.tjs-typing { color: var(--tjs-muted); font-size: 0.8em; padding: 0 14px; min-height: 1.2em; }
.tjs-actions { display: flex; gap: 6px; font-size: 0.75em; justify-content: flex-end; }
.tjs-actions button, .tjs-editor button, .tjs-leave { font: inherit; background: none; border: 0;
  color: var(--tjs-accent); cursor: pointer; padding: 0 2px; }
.tjs-actions button:focus-visible, .tjs-editor button:focus-visible, .tjs-leave:focus-visible {
  outline: 2px solid var(--tjs-accent); outline-offset: 1px; }
.tjs-editor { display: flex; flex-direction: column; gap: 4px; min-width: 240px; }
.tjs-message__controls { display: flex; gap: 6px; align-items: center; justify-content: flex-end; }
.tjs-message-menu { position: relative; font-size: 0.75em; }
.tjs-message-menu__button { font: inherit; background: none; border: 0; color: var(--tjs-accent);
  cursor: pointer; padding: 0 4px; border-radius: 4px; }
/* The list opens towards the middle of the log: rightwards under others' messages. */
.tjs-message-menu__list { position: absolute; top: 100%; left: 0; z-index: 10; min-width: 10em;
  margin: 2px 0 0; padding: 4px 0; list-style: none; background: var(--tjs-bg);
  border: 1px solid var(--tjs-border); border-radius: 6px; box-shadow: 0 4px 12px rgba(0,0,0,0.15); }
.tjs-message--own .tjs-message-menu__list { left: auto; right: 0; }
.tjs-message-menu__item { padding: 4px 12px; cursor: pointer; white-space: nowrap; }
.tjs-message-menu__item:hover, .tjs-message-menu__item:focus { background: var(--tjs-own-bg); }
.tjs-message-menu__button:focus-visible, .tjs-message-menu__item:focus-visible {
  outline: 2px solid var(--tjs-accent); outline-offset: 1px; }
.tjs-editor textarea { font: inherit; padding: 4px 6px; border: 1px solid var(--tjs-border);
  border-radius: 6px; min-height: 3em; }
.tjs-message mark { background: #fde68a; color: inherit; }
.tjs-message pre { white-space: pre-wrap; margin: 4px 0; }
.tjs-message code { font-family: ui-monospace, monospace; background: rgba(0,0,0,0.06);
  padding: 0 3px; border-radius: 3px; }
.tjs-chatbox__header { display: flex; align-items: center; gap: 8px; }
/* In a narrow chatbox the Leave button moves to a second line, and the title
   and names shorten with an ellipsis. Presence and the button never wrap. */
.tjs-chatbox__header { flex-wrap: wrap; }
.tjs-chatbox__header .tjs-title { flex: 1 1 10em; min-width: 0; }
.tjs-chatbox__header .tjs-leave { margin-inline-start: auto; }
.tjs-title > span, .tjs-title > small { display: block; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; }
.tjs-presence, .tjs-leave { white-space: nowrap; }
.tjs-presence { font-size: 0.8em; color: var(--tjs-muted); }
.tjs-avatar--large { width: 32px; height: 32px; font-size: 0.8em; flex: none; }
.tjs-presence--online::before { content: ""; display: inline-block; width: 8px; height: 8px;
  border-radius: 50%; background: #2f9e44; margin-inline-end: 4px; }
.tjs-row { display: flex; flex-direction: column; align-items: flex-start; }
.tjs-row--own { align-items: flex-end; }
.tjs-row--system { align-items: center; }
/* The span is ReactPy's wrapper of the DaySeparator component. */
.tjs-row > span { align-self: stretch; display: flex; justify-content: center; }
.tjs-message { max-width: 80%; padding: 6px 10px; border-radius: var(--tjs-radius);
  background: var(--tjs-other-bg); overflow-wrap: anywhere; }
.tjs-message--own { background: var(--tjs-own-bg); }
.tjs-message--system { background: none; color: var(--tjs-muted); font-style: italic; }
.tjs-message__meta { font-size: 0.75em; color: var(--tjs-muted); display: flex; gap: 8px; }
.tjs-message__sender { font-weight: 600; }
.tjs-message__text { white-space: pre-wrap; }
.tjs-composer { display: flex; gap: 8px; padding: 10px; border-top: 1px solid var(--tjs-border); }
.tjs-composer textarea { flex: 1; resize: none; font: inherit; padding: 6px 8px;
  border: 1px solid var(--tjs-border); border-radius: 6px; min-height: 2.4em; }
.tjs-composer button { font: inherit; padding: 6px 14px; border: 0; border-radius: 6px;
  background: var(--tjs-accent); color: #fff; cursor: pointer; }
.tjs-composer button:disabled { opacity: 0.5; cursor: default; }
.tjs-composer textarea:focus-visible, .tjs-composer button:focus-visible {
  outline: 2px solid var(--tjs-accent); outline-offset: 2px; }
.tjs-log:focus-visible { outline: 2px solid var(--tjs-accent); outline-offset: -2px; }
.tjs-editor textarea:focus-visible { outline: 2px solid var(--tjs-accent); outline-offset: 1px; }
.tjs-new-messages:focus-visible { outline: 2px solid var(--tjs-fg); outline-offset: 2px; }
.tjs-empty, .tjs-loading { color: var(--tjs-muted); padding: 16px; }
.tjs-error { color: #9b1c1c; padding: 8px 14px; }
.tjs-notice { color: var(--tjs-muted); padding: 8px 14px; background: #fff8e1; margin: 0; }
`;

function injectStyles() {
  if (typeof document === "undefined" || document.getElementById(STYLE_ID)) return;
  const style = document.createElement("style");
  style.id = STYLE_ID;
  style.textContent = STYLES;
  document.head.appendChild(style);
}
injectStyles();

function newKey() {
  if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// A view within this many px of the list's end counts as at the end.
const NEAR_END_PX = 40;

function isNearEnd(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_END_PX;
}

// The message list. It follows new messages while the reader is at the
// bottom (within NEAR_END_PX). Once the reader scrolls up it leaves the scroll
// position alone, and a button offers to jump to the new messages. Only a
// scroll towards the top stops following, because a layout change (the
// composer appearing, a resize) moves the bottom without moving scrollTop.
// Scrolling near the top requests older messages, and their arrival keeps the
// reader's place. Messages count as seen when the list is at the bottom of a
// visible page in a focused window. The list is in the Tab order, so keyboard
// users can scroll it with the arrow keys.
export function MessageLog({ label, className, children, newMessagesLabel, onNearTop, onSeen }) {
  const ref = useRef(null);
  const atBottom = useRef(true);
  const lastTop = useRef(0);
  const requestedFor = useRef(null);
  // While the reader is scrolled up: the message at the top of the view and
  // its distance in px from the list's top edge (see keepPlace).
  const anchor = useRef(null);
  const shownLastId = useRef(null);
  const [unseenBelow, setUnseenBelow] = useState(false);
  useKeyboardFocusKept(ref);

  // The list's status element carries the ids of the first and last message
  // and whether older ones exist; it re-renders on the server by itself.
  const readStatus = () => {
    const element = ref.current && ref.current.querySelector("[data-last-id]");
    if (!element) return { hasOlder: false, firstId: null, lastId: null };
    return {
      hasOlder: element.dataset.hasOlder === "true",
      firstId: element.dataset.firstId || null,
      lastId: element.dataset.lastId || null,
    };
  };

  // Remembers the first message whose bottom edge is below the list's top
  // edge. Messages are in document order, so a binary search finds it.
  const rememberPlace = () => {
    const current = ref.current;
    anchor.current = null;
    if (!current || atBottom.current) return;
    const top = current.getBoundingClientRect().top;
    const messages = current.querySelectorAll("[data-message-id]");
    let low = 0;
    let high = messages.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (messages[middle].getBoundingClientRect().bottom > top) high = middle;
      else low = middle + 1;
    }
    if (low === messages.length) return;
    const element = messages[low];
    anchor.current = {
      id: element.dataset.messageId,
      offset: element.getBoundingClientRect().top - top,
    };
  };
  // Scrolls by as far as the remembered message moved, so that DOM changes
  // above it leave the reader's view as it was. A message inserted or
  // removed above it moves messages between blocks, one server update per
  // block, so the message can be missing for a moment: it has left its old
  // block and not yet reached its new one.
  const keepPlace = () => {
    const current = ref.current;
    const kept = anchor.current;
    if (!current || !kept) return;
    const element = current.querySelector(`[data-message-id="${CSS.escape(kept.id)}"]`);
    if (!element) return;
    const top = element.getBoundingClientRect().top - current.getBoundingClientRect().top;
    if (top !== kept.offset) {
      current.scrollTop += top - kept.offset;
      lastTop.current = current.scrollTop;
    }
  };

  // lastTop is the scroll position this list last accounted for. The
  // browser fires the scroll event with the next frame, so a DOM change can
  // come first. A view above lastTop and away from the end has left the end
  // before any event reported it, and following would undo the reader's
  // move. A view above lastTop but at the end is one that the browser
  // clamped after content shrank, and it keeps following.
  const noteUnreportedScroll = () => {
    const current = ref.current;
    if (!current || current.scrollTop >= lastTop.current) return;
    if (!isNearEnd(current)) {
      atBottom.current = false;
      rememberPlace();
    }
    lastTop.current = current.scrollTop;
  };

  const reportSeen = () => {
    const visible = document.visibilityState === "visible" && document.hasFocus();
    if (visible && atBottom.current && onSeen) onSeen({ lastId: readStatus().lastId });
  };
  const follow = () => {
    const current = ref.current;
    if (!current || !atBottom.current) return;
    current.scrollTop = current.scrollHeight;
    lastTop.current = current.scrollTop;
  };
  const onResized = () => {
    noteUnreportedScroll();
    follow();
  };
  const jumpDown = () => {
    const current = ref.current;
    if (!current) return;
    atBottom.current = true;
    current.scrollTop = current.scrollHeight;
    lastTop.current = current.scrollTop;
    setUnseenBelow(false);
    reportSeen();
  };
  const onScroll = () => {
    const current = ref.current;
    if (!current) return;
    if (isNearEnd(current)) {
      if (!atBottom.current) {
        atBottom.current = true;
        setUnseenBelow(false);
        reportSeen();
      }
    } else if (current.scrollTop < lastTop.current) {
      atBottom.current = false;
    }
    lastTop.current = current.scrollTop;
    rememberPlace();
    loadOlderAtTop();
  };
  // Asks once per first message, so a load in flight is not requested again.
  const loadOlderAtTop = () => {
    const current = ref.current;
    const status = readStatus();
    if (!current || current.scrollTop >= 80 || !status.hasOlder || !onNearTop) return;
    if (requestedFor.current === status.firstId) return;
    requestedFor.current = status.firstId;
    onNearTop({ firstId: status.firstId });
  };

  // Runs after every change of the list's DOM, before the browser paints.
  // The server updates the status element after the message blocks, so a
  // new first or last id there means that the blocks before it are complete.
  const onChanged = () => {
    noteUnreportedScroll();
    if (atBottom.current) follow();
    else keepPlace();
    const { lastId } = readStatus();
    if (lastId !== shownLastId.current) {
      if (shownLastId.current && !atBottom.current) setUnseenBelow(true);
      shownLastId.current = lastId;
      reportSeen();
    }
    // A reader still near the top, after a page too short to move the view,
    // gets the next page without scrolling again.
    loadOlderAtTop();
  };

  // Listeners set up once call the handlers of the latest render.
  const latest = useRef(null);
  latest.current = { onChanged, reportSeen, onResized };
  useEffect(() => {
    const current = ref.current;
    const seen = () => latest.current.reportSeen();
    window.addEventListener("focus", seen);
    document.addEventListener("visibilitychange", seen);
    const resizes =
      typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => latest.current.onResized());
    if (resizes && current) resizes.observe(current);
    const changes = new MutationObserver(() => latest.current.onChanged());
    if (current) {
      changes.observe(current, {
        childList: true,
        subtree: true,
        characterData: true,
        attributeFilter: ["data-first-id", "data-last-id", "data-has-older"],
      });
    }
    latest.current.onChanged();
    return () => {
      window.removeEventListener("focus", seen);
      document.removeEventListener("visibilitychange", seen);
      if (resizes) resizes.disconnect();
      changes.disconnect();
    };
  }, []);

  return h(
    "div",
    { className: "tjs-log-frame" },
    h(
      "div",
      { ref, role: "log", "aria-label": label, "aria-live": "polite", tabIndex: 0, className, onScroll },
      children,
    ),
    unseenBelow
      ? h("button", { type: "button", className: "tjs-new-messages", onClick: jumpDown }, newMessagesLabel)
      : null,
  );
}

const FOCUSABLE = 'button:not([disabled]), textarea:not([disabled]), a[href], [tabindex]:not([tabindex="-1"])';

// Keeps keyboard focus in the message list when a re-render removes the
// focused control, for example when an editor closes or a message is deleted.
// Focus moves to the first control of the same message, or to the list when
// the message is gone, where it would otherwise fall back to the page's start.
// Also makes Escape in a delete confirmation press its Cancel button (class
// tjs-cancel).
function useKeyboardFocusKept(ref) {
  useEffect(() => {
    const list = ref.current;
    if (!list) return undefined;
    let focused = null;
    let focusedMessageId = null;
    const follow = (element) => {
      focused = list.contains(element) ? element : null;
      const message = focused && element.closest("[data-message-id]");
      focusedMessageId = message ? message.dataset.messageId : null;
    };
    // Controls in the list can take focus before this effect runs.
    follow(document.activeElement);
    const onFocusIn = (event) => follow(event.target);
    const onKeyDown = (event) => {
      if (event.key !== "Escape" || event.defaultPrevented) return;
      const actions = event.target.closest(".tjs-actions");
      const cancel = actions && actions.querySelector(".tjs-cancel");
      if (!cancel) return;
      // preventDefault also marks this Escape as handled, so a Popup stays open.
      event.preventDefault();
      cancel.click();
    };
    const observer = new MutationObserver(() => {
      const active = document.activeElement;
      if (!focused || focused.isConnected || (active && active !== document.body)) return;
      focused = null;
      const message = focusedMessageId
        ? list.querySelector(`[data-message-id="${CSS.escape(focusedMessageId)}"]`)
        : null;
      const next = message && message.querySelector(FOCUSABLE);
      (next || list).focus();
    });
    list.addEventListener("focusin", onFocusIn);
    list.addEventListener("keydown", onKeyDown);
    observer.observe(list, { childList: true, subtree: true });
    return () => {
      list.removeEventListener("focusin", onFocusIn);
      list.removeEventListener("keydown", onKeyDown);
      observer.disconnect();
    };
  }, []);
}

// Options of the date formats, used in the reader's default locale. Each gives
// the text of Date's toLocaleTimeString or toLocaleDateString with the same
// options. "full" gives the text of toLocaleString, which uses these options
// when given none.
const DATE_FORMAT_OPTIONS = {
  time: { hour: "2-digit", minute: "2-digit" },
  full: { year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" },
  day: { weekday: "long", year: "numeric", month: "long", day: "numeric" },
};
const dateFormats = {};

// Formats a Date with one of DATE_FORMAT_OPTIONS. Each Intl.DateTimeFormat is
// built on first use and kept for the page's lifetime, because building one
// costs far more than formatting, and Date's toLocale*String methods build a
// new one per call when given options.
// NOTE: a formatter keeps the time zone that was in force when it was built,
// so a change of the system's time zone shows after the page reloads.
function formatDate(name, date) {
  if (!dateFormats[name]) dateFormats[name] = new Intl.DateTimeFormat([], DATE_FORMAT_OPTIONS[name]);
  return dateFormats[name].format(date);
}

// The ReactPy client renders every JS component of the page again on each
// update, so the date components are memoized: they run again only when
// their props change.

// A day heading before a message whose local date differs from the previous one's.
export const DaySeparator = memo(function DaySeparator({ ms, previousMs }) {
  const date = new Date(ms);
  if (previousMs !== null && previousMs !== undefined) {
    if (new Date(previousMs).toDateString() === date.toDateString()) return null;
  }
  const label = formatDate("day", date);
  return h("div", { className: "tjs-day", role: "separator", "aria-label": label }, label);
});

// A time of day in the reader's own time zone and locale.
export const Timestamp = memo(function Timestamp({ ms }) {
  const date = new Date(ms);
  const text = formatDate("time", date);
  // dir "auto" keeps "11:30 PM" in order inside a right-to-left chatbox.
  return h("time", { dateTime: date.toISOString(), title: formatDate("full", date), dir: "auto" }, text);
});

// The message composer. Keystrokes stay in the browser: the server only
// hears about a message when it is sent, with a fresh idempotency key so a
// replayed event never sends it twice.
const DRAFT_PREFIX = "talkjs-components-draft:";
const TYPING_REPEAT_MS = 2500;

function readDraft(conversationId) {
  try {
    return (conversationId && window.sessionStorage.getItem(DRAFT_PREFIX + conversationId)) || "";
  } catch (error) {
    return "";
  }
}

function writeDraft(conversationId, text) {
  if (!conversationId) return;
  try {
    if (text) window.sessionStorage.setItem(DRAFT_PREFIX + conversationId, text);
    else window.sessionStorage.removeItem(DRAFT_PREFIX + conversationId);
  } catch (error) {
    // Storage may be disabled; the draft then lives only in this field.
  }
}

export function Composer({
  onSend,
  onTyping,
  onFocus,
  onBlur,
  label,
  sendLabel,
  placeholder,
  disabled,
  disabledPlaceholder,
  enterSendsMessage = true,
  autofocus = true,
  spellcheck = false,
  conversationId,
  ack,
  maxLength,
}) {
  const [text, setText] = useState(() => readDraft(conversationId));
  const input = useRef(null);
  const pending = useRef({});
  const previousConversation = useRef(conversationId);
  const typingSince = useRef(0);

  // Drafts are kept per conversation in the tab's sessionStorage, so they
  // survive reconnects and reloads. A different conversation brings its own
  // draft; the first load (from none to one) keeps what was typed meanwhile.
  useEffect(() => {
    const previous = previousConversation.current;
    previousConversation.current = conversationId;
    if (previous && previous !== conversationId) setText(readDraft(conversationId));
    else if (!previous && conversationId && !text) setText(readDraft(conversationId));
    if (conversationId && autofocus && !disabled && input.current) input.current.focus();
  }, [conversationId]);
  useEffect(() => writeDraft(conversationId, text), [text, conversationId]);

  // The server acknowledges every send. A failed one comes back into an
  // empty field, so the text is not lost.
  useEffect(() => {
    if (!ack || !(ack.key in pending.current)) return;
    const draft = pending.current[ack.key];
    delete pending.current[ack.key];
    if (!ack.ok) setText((current) => (current ? current : draft));
  }, [ack]);

  const stopTyping = () => {
    if (typingSince.current && onTyping) onTyping({ typing: false });
    typingSince.current = 0;
  };
  const onInput = (event) => {
    const value = event.target.value;
    setText(value);
    // Saved at once, not in an effect, so a remount right after a key keeps it.
    writeDraft(conversationId, value);
    if (!onTyping) return;
    if (!value) {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (now - typingSince.current > TYPING_REPEAT_MS) {
      typingSince.current = now;
      onTyping({ typing: true });
    }
  };
  const send = () => {
    const trimmed = text.trim();
    if (disabled || !trimmed) return;
    const key = newKey();
    pending.current[key] = text;
    onSend({ text: trimmed, key });
    typingSince.current = 0;
    setText("");
    if (input.current) input.current.focus();
  };
  const onKeyDown = (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    if (!enterSendsMessage) return;
    event.preventDefault();
    send();
  };
  return h(
    "div",
    { className: "tjs-composer" },
    h("textarea", {
      ref: input,
      "aria-label": label,
      placeholder: disabled ? disabledPlaceholder : placeholder,
      value: text,
      disabled,
      rows: 1,
      // An empty field takes the chatbox's direction, so the placeholder
      // lines up with the rest of an RTL chatbox; typed text picks its own.
      dir: text ? "auto" : undefined,
      maxLength,
      spellcheck,
      onInput,
      onKeyDown,
      onFocus: () => onFocus && onFocus({}),
      onBlur: () => {
        stopTyping();
        if (onBlur) onBlur({});
      },
    }),
    h("button", { type: "button", onClick: send, disabled: disabled || !text.trim() }, sendLabel),
  );
}

// Inline editing of an own message: Enter saves, Shift+Enter adds a line,
// Escape cancels.
export function MessageEditor({ initialText, label, saveLabel, cancelLabel, onSave, onCancel, maxLength }) {
  const [text, setText] = useState(initialText || "");
  const input = useRef(null);
  useEffect(() => {
    if (input.current) {
      input.current.focus();
      input.current.setSelectionRange(text.length, text.length);
    }
  }, []);
  const save = () => {
    if (text.trim()) onSave({ text: text.trim() });
  };
  const onKeyDown = (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      onCancel({});
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      save();
    }
  };
  return h(
    "div",
    { className: "tjs-editor" },
    h("textarea", {
      ref: input,
      "aria-label": label,
      value: text,
      dir: "auto",
      maxLength,
      onInput: (event) => setText(event.target.value),
      onKeyDown,
    }),
    h("button", { type: "button", onClick: save, disabled: !text.trim() }, saveLabel),
    h("button", { type: "button", onClick: () => onCancel({}) }, cancelLabel),
  );
}

// The "Message actions" menu of one message, a WAI-ARIA menu button.
// Whether it is open, and which item has focus, is state here in the browser,
// not in Python. So opening, moving and closing need no server round trip and
// re-render no message block. Moving focus also needs the DOM, which Python
// cannot reach. Python hears only of the picked action, through onAction({name}).
// Enter, Space or a click opens the menu and focuses the first item (Arrow Up
// the last). Arrow keys, Home and End move; Enter or Space picks; Escape
// closes and returns focus to the button; Tab, or a click outside, closes.
let menuCount = 0;

export function MessageActionMenu({ label, icon, actions, onAction }) {
  const items = actions || [];
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const root = useRef(null);
  const button = useRef(null);
  const list = useRef(null);
  const ids = useRef(null);
  if (ids.current === null) {
    menuCount += 1;
    ids.current = { button: `tjs-menu-button-${menuCount}`, list: `tjs-menu-${menuCount}` };
  }
  const expanded = open && items.length > 0;
  const index = Math.min(active, items.length - 1);

  const openAt = (position) => {
    setActive(position);
    setOpen(true);
  };
  const closeAndRefocus = () => {
    setOpen(false);
    if (button.current) button.current.focus();
  };
  const pick = (action) => {
    closeAndRefocus();
    if (onAction) onAction({ name: action.name });
  };

  // Focus follows the active item while the menu is open.
  useLayoutEffect(() => {
    if (!expanded || !list.current) return;
    const elements = list.current.querySelectorAll('[role="menuitem"]');
    if (elements[index]) elements[index].focus();
  }, [expanded, index]);

  // A press anywhere outside the menu closes it, leaving focus where the press put it.
  useEffect(() => {
    if (!expanded) return undefined;
    const onPointerDown = (event) => {
      if (root.current && !root.current.contains(event.target)) setOpen(false);
    };
    document.addEventListener("pointerdown", onPointerDown, true);
    return () => document.removeEventListener("pointerdown", onPointerDown, true);
  }, [expanded]);

  const onButtonKeyDown = (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      openAt(0);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      openAt(items.length - 1);
    }
  };
  const onListKeyDown = (event) => {
    const last = items.length - 1;
    if (event.key === "ArrowDown") setActive(index >= last ? 0 : index + 1);
    else if (event.key === "ArrowUp") setActive(index <= 0 ? last : index - 1);
    else if (event.key === "Home") setActive(0);
    else if (event.key === "End") setActive(last);
    else if (event.key === "Enter" || event.key === " ") pick(items[index]);
    // preventDefault also marks this Escape as handled, so a Popup around the chatbox stays open.
    else if (event.key === "Escape") closeAndRefocus();
    else {
      if (event.key === "Tab") setOpen(false);
      return;
    }
    event.preventDefault();
  };
  // Focus that leaves the menu by other means (a screen reader, a script) closes it too.
  const onFocusOut = (event) => {
    if (expanded && root.current && !root.current.contains(event.relatedTarget)) setOpen(false);
  };

  return h(
    "div",
    { ref: root, className: "tjs-message-menu", onFocusOut },
    h(
      "button",
      {
        ref: button,
        id: ids.current.button,
        type: "button",
        className: "tjs-message-menu__button",
        "aria-label": label,
        title: label,
        "aria-haspopup": "menu",
        "aria-expanded": expanded ? "true" : "false",
        "aria-controls": expanded ? ids.current.list : undefined,
        onClick: () => (expanded ? setOpen(false) : openAt(0)),
        onKeyDown: onButtonKeyDown,
      },
      h("span", { "aria-hidden": "true" }, icon),
    ),
    expanded
      ? h(
          "ul",
          {
            ref: list,
            id: ids.current.list,
            role: "menu",
            "aria-labelledby": ids.current.button,
            className: "tjs-message-menu__list",
            onKeyDown: onListKeyDown,
          },
          items.map((action, position) =>
            h(
              "li",
              {
                key: action.name,
                role: "menuitem",
                tabIndex: -1,
                className: "tjs-message-menu__item",
                onClick: () => pick(action),
                onMouseMove: () => position !== index && setActive(position),
              },
              action.label,
            ),
          ),
        )
      : null,
  );
}

// Desktop notifications. Python decides what to notify. This component
// handles what only the browser can observe: the permission, the user's
// gestures, whether the window has focus, and the notification's click.
export function Notifier({
  enabled,
  promptAllowed,
  notification,
  onPermission,
  onPermissionNeeded,
  onClicked,
}) {
  const supported = typeof window !== "undefined" && "Notification" in window;
  const permission = () => (supported ? Notification.permission : "unsupported");
  const permissionReported = useRef(false);
  const shownId = useRef(null);

  // Report the permission on mount and whenever the tab becomes visible again,
  // because the user may have changed it in the browser's settings meanwhile.
  useEffect(() => {
    const report = () => onPermission({ permission: permission() });
    report();
    document.addEventListener("visibilitychange", report);
    return () => document.removeEventListener("visibilitychange", report);
  }, []);

  // Before any prompt, give Python's on_browser_permission_needed a chance to object.
  useEffect(() => {
    if (enabled && permission() === "default" && !permissionReported.current) {
      permissionReported.current = true;
      onPermissionNeeded({});
    }
  }, [enabled]);

  // Browsers only prompt during a user gesture, so wait for the next click or key.
  useEffect(() => {
    if (!enabled || !promptAllowed || permission() !== "default") return undefined;
    const remove = () => {
      document.removeEventListener("click", ask, true);
      document.removeEventListener("keydown", ask, true);
    };
    const ask = () => {
      remove();
      Notification.requestPermission().then((result) => onPermission({ permission: result }));
    };
    document.addEventListener("click", ask, true);
    document.addEventListener("keydown", ask, true);
    return remove;
  }, [enabled, promptAllowed]);

  const notificationId = notification ? notification.id : null;
  useEffect(() => {
    if (!notification || notification.id === shownId.current) return;
    shownId.current = notification.id;
    if (!enabled || permission() !== "granted") return;
    if (document.hasFocus() && notification.conversationShown) return;
    const shown = new Notification(notification.title, {
      body: notification.body,
      tag: notification.conversationId,
      icon: notification.icon || undefined,
    });
    shown.onclick = () => {
      window.focus();
      shown.close();
      onClicked({ conversationId: notification.conversationId });
    };
  }, [notificationId]);
  return null;
}
