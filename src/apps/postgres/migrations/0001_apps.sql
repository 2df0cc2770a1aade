-- Herald's apps. `id`, `key`, `secret` and `enabled` are columns (operators change them by
-- hand: UPDATE herald_apps SET enabled = false WHERE id = '…'); every other per-app key of
-- config/herald.toml's [[apps]] (client_events, max_connections, allowed_origins, limits,
-- webhooks, …) lives in `settings`, a JSON object with the same names, absent keys taking
-- Herald's defaults.
CREATE TABLE herald_apps (
    id         text PRIMARY KEY CHECK (id <> '' AND id !~ '[/?#[:space:]]'),
    key        text NOT NULL UNIQUE CHECK (key <> '' AND key !~ '[/?#[:space:]]'),
    secret     text NOT NULL CHECK (secret <> ''),
    enabled    boolean NOT NULL DEFAULT true,
    settings   jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every change, however it is made (Herald's admin API, psql, a billing job), tells every
-- Herald node at once: NOTIFY herald_apps with the app's id and keys.
CREATE FUNCTION herald_apps_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('herald_apps', json_build_object('id', OLD.id, 'key', OLD.key)::text);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
        PERFORM pg_notify('herald_apps',
            json_build_object('id', NEW.id, 'key', NEW.key, 'old_id', OLD.id, 'old_key', OLD.key)::text);
    ELSE
        PERFORM pg_notify('herald_apps', json_build_object('id', NEW.id, 'key', NEW.key)::text);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER herald_apps_changed BEFORE INSERT OR UPDATE OR DELETE ON herald_apps
    FOR EACH ROW EXECUTE FUNCTION herald_apps_notify();
