// Browser-side pieces of talkjs-components, loaded by ReactPy as a JS module.
// "react" resolves to the Preact build that ReactPy ships, so this file needs
// no bundler and no network access.
import React, { useEffect, useLayoutEffect, useRef, useState } from "react";

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
.tjs-log { flex: 1; overflow-y: auto; padding: 4px 14px 10px; display: flex;
  flex-direction: column; }
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
.tjs-editor textarea { font: inherit; padding: 4px 6px; border: 1px solid var(--tjs-border);
  border-radius: 6px; min-height: 3em; }
.tjs-message mark { background: #fde68a; color: inherit; }
.tjs-message pre { white-space: pre-wrap; margin: 4px 0; }
.tjs-message code { font-family: ui-monospace, monospace; background: rgba(0,0,0,0.06);
  padding: 0 3px; border-radius: 3px; }
.tjs-chatbox__header { display: flex; align-items: center; gap: 8px; }
.tjs-chatbox__header .tjs-title { flex: 1; }
.tjs-presence { font-size: 0.8em; color: var(--tjs-muted); }
.tjs-avatar--large { width: 32px; height: 32px; font-size: 0.8em; flex: none; }
.tjs-presence--online::before { content: ""; display: inline-block; width: 8px; height: 8px;
  border-radius: 50%; background: #2f9e44; margin-right: 4px; }
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

// The message list. It follows new messages while the reader is at the
// bottom (within 40 px). Once the reader scrolls up it leaves the scroll
// position alone, and a button offers to jump to the new messages. Only a
// scroll towards the top stops following, because a layout change (the
// composer appearing, a resize) moves the bottom without moving scrollTop.
// Scrolling near the top requests older messages, and their arrival keeps the
// reader's place. Messages count as seen when the list is at the bottom of a
// visible page in a focused window.
export function MessageLog({ label, className, children, newMessagesLabel, onNearTop, onSeen }) {
  const ref = useRef(null);
  const atBottom = useRef(true);
  const lastTop = useRef(0);
  const requestedFor = useRef(null);
  const previous = useRef({ firstId: null, lastId: null, height: 0, top: 0 });
  const [unseenBelow, setUnseenBelow] = useState(false);

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

  const node = ref.current;
  if (node) {
    // Measured during render, before the DOM changes, to keep the place on a prepend.
    previous.current.height = node.scrollHeight;
    previous.current.top = node.scrollTop;
  }

  const reportSeen = () => {
    const visible = document.visibilityState === "visible" && document.hasFocus();
    if (visible && atBottom.current && onSeen) onSeen({ lastId: readStatus().lastId });
  };
  const follow = () => {
    const current = ref.current;
    if (current && atBottom.current) current.scrollTop = current.scrollHeight;
  };
  const jumpDown = () => {
    const current = ref.current;
    if (!current) return;
    atBottom.current = true;
    current.scrollTop = current.scrollHeight;
    setUnseenBelow(false);
    reportSeen();
  };
  const onScroll = () => {
    const current = ref.current;
    if (!current) return;
    if (current.scrollHeight - current.scrollTop - current.clientHeight < 40) {
      if (!atBottom.current) {
        atBottom.current = true;
        setUnseenBelow(false);
        reportSeen();
      }
    } else if (current.scrollTop < lastTop.current) {
      atBottom.current = false;
    }
    lastTop.current = current.scrollTop;
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

  useLayoutEffect(() => {
    const current = ref.current;
    const before = previous.current;
    const { firstId, lastId } = readStatus();
    if (current && before.firstId && before.firstId !== firstId && before.lastId === lastId) {
      // Older messages arrived in front: keep the same messages in view.
      current.scrollTop = before.top + (current.scrollHeight - before.height);
    } else if (before.lastId && before.lastId !== lastId && !atBottom.current) {
      setUnseenBelow(true);
    }
    follow();
    if (before.lastId !== lastId) window.setTimeout(reportSeen, 0);
    // The status can update after the rows, so a reader waiting at the top
    // gets the next page without scrolling again.
    loadOlderAtTop();
    previous.current = { firstId, lastId, height: 0, top: 0 };
  });
  useEffect(() => {
    const current = ref.current;
    window.addEventListener("focus", reportSeen);
    document.addEventListener("visibilitychange", reportSeen);
    const observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(follow);
    if (observer && current) observer.observe(current);
    return () => {
      window.removeEventListener("focus", reportSeen);
      document.removeEventListener("visibilitychange", reportSeen);
      if (observer) observer.disconnect();
    };
  }, []);

  return h(
    "div",
    { className: "tjs-log-frame" },
    h(
      "div",
      { ref, role: "log", "aria-label": label, "aria-live": "polite", className, onScroll },
      children,
    ),
    unseenBelow
      ? h("button", { type: "button", className: "tjs-new-messages", onClick: jumpDown }, newMessagesLabel)
      : null,
  );
}

// A day heading before a message whose local date differs from the previous one's.
export function DaySeparator({ ms, previousMs }) {
  const date = new Date(ms);
  if (previousMs !== null && previousMs !== undefined) {
    if (new Date(previousMs).toDateString() === date.toDateString()) return null;
  }
  const label = date.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
  return h("div", { className: "tjs-day", role: "separator", "aria-label": label }, label);
}

// A time of day in the reader's own time zone and locale.
export function Timestamp({ ms }) {
  const date = new Date(ms);
  const text = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return h("time", { dateTime: date.toISOString(), title: date.toLocaleString() }, text);
}

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
      dir: "auto",
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
