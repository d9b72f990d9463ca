-- Schema version 1 of the PostgreSQL store: users, conversations, participants,
-- messages and the event log. talkjs-components migrate runs this file in one
-- transaction and records version 1 in talkjs_schema_migrations.
--
-- Every row carries app_id, so several apps share one schema. Ids use the "C"
-- collation: they compare as bytes, the order SQLite's BINARY collation gives,
-- so paging by id is the same on both stores. Times are milliseconds since
-- the Unix epoch. JSON columns hold what the SQLite store keeps as JSON text.

CREATE TABLE users (
    app_id text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    name text,
    email jsonb,            -- list of strings
    phone jsonb,            -- list of strings
    photo_url text,
    role text,
    locale text,
    welcome_message text,
    custom jsonb,           -- object of strings
    created_at bigint NOT NULL,
    PRIMARY KEY (app_id, id)
);

CREATE TABLE conversations (
    app_id text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    subject text,
    photo_url text,
    welcome_messages jsonb, -- list of strings
    custom jsonb NOT NULL DEFAULT '{}',
    created_at bigint NOT NULL,
    last_message_at bigint,
    PRIMARY KEY (app_id, id)
);

-- last_read_seq is the seq of the last message the participant read, 0 when none.
CREATE TABLE participants (
    app_id text COLLATE "C" NOT NULL,
    conversation_id text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    access text NOT NULL CHECK (access IN ('Read', 'ReadWrite')),
    notify boolean NOT NULL,
    last_read_seq bigint NOT NULL DEFAULT 0,
    joined_at bigint NOT NULL,
    PRIMARY KEY (app_id, conversation_id, user_id),
    FOREIGN KEY (app_id, conversation_id)
        REFERENCES conversations (app_id, id) ON DELETE CASCADE,
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id)
);

CREATE INDEX participants_by_user ON participants (app_id, user_id);

-- seq comes from one sequence shared by every app in the schema. A message
-- insert locks its conversation's row first, so the seqs of one conversation
-- commit in increasing order.
CREATE TABLE messages (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    conversation_id text COLLATE "C" NOT NULL,
    sender_id text COLLATE "C",  -- NULL for system messages
    text text NOT NULL,
    type text NOT NULL,
    created_at bigint NOT NULL,
    edited_at bigint,
    custom jsonb NOT NULL DEFAULT '{}',
    origin text NOT NULL,
    idempotency_key text,
    UNIQUE (app_id, id),
    FOREIGN KEY (app_id, conversation_id)
        REFERENCES conversations (app_id, id) ON DELETE CASCADE
);

CREATE INDEX messages_by_conversation ON messages (app_id, conversation_id, seq);

-- A plain UNIQUE constraint treats NULL senders as distinct, so system
-- messages (no sender) would never collide. Ids are never empty, so ''
-- stands for "no sender" without clashing with a user id.
CREATE UNIQUE INDEX messages_by_idempotency_key
    ON messages (app_id, conversation_id, (coalesce(sender_id, '')), idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- One row per app that has logged an event. last_seq is the seq of the app's
-- latest event; each append increments it, which locks the row until commit,
-- so an app's events commit in seq order. Every event of the app with seq up
-- to pruned_through_seq is deleted, and every later one is kept.
CREATE TABLE event_log (
    app_id text COLLATE "C" PRIMARY KEY,
    last_seq bigint NOT NULL,
    pruned_through_seq bigint NOT NULL DEFAULT 0
);

CREATE TABLE events (
    app_id text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    type text NOT NULL,
    created_at bigint NOT NULL,
    recipients text[] COLLATE "C" NOT NULL,  -- user ids, to prune event_recipients by key
    payload jsonb NOT NULL,                  -- the event with camelCase keys, without seq
    PRIMARY KEY (app_id, seq)
);

CREATE TABLE event_recipients (
    app_id text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (app_id, user_id, seq)
);
