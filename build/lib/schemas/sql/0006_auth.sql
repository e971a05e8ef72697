-- Access control (off unless SLUICE_AUTH_ENABLED): users, API tokens and per-resource grants.
CREATE TABLE auth_users (
    username      text    PRIMARY KEY,
    password_hash text    NOT NULL,   -- pbkdf2_sha256$iterations$salt$hash
    is_admin      boolean NOT NULL DEFAULT false
);

CREATE TABLE auth_tokens (
    token_sha256 text PRIMARY KEY,    -- tokens are shown once and stored hashed
    username     text NOT NULL REFERENCES auth_users ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE experiment_permissions (
    experiment_id bigint NOT NULL,
    username      text   NOT NULL REFERENCES auth_users ON DELETE CASCADE,
    permission    text   NOT NULL CHECK (permission IN ('READ', 'EDIT', 'MANAGE', 'NO_PERMISSIONS')),
    PRIMARY KEY (experiment_id, username)
);

CREATE TABLE registered_model_permissions (
    name       text NOT NULL,
    username   text NOT NULL REFERENCES auth_users ON DELETE CASCADE,
    permission text NOT NULL CHECK (permission IN ('READ', 'EDIT', 'MANAGE', 'NO_PERMISSIONS')),
    PRIMARY KEY (name, username)
);
