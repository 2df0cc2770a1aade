//! The database schema, as numbered migrations applied once each, in order, under an advisory
//! lock (several nodes may start at once). Must not change a released migration: add one.

use tokio_postgres::Client;

/// (version, name, SQL), in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "apps", include_str!("migrations/0001_apps.sql"))];

/// Any constant: the advisory lock that serializes migrations across nodes.
const LOCK: i64 = 0x6865_7261_6c64; // "herald"

/// Applies the migrations this database lacks; returns how many ran.
///
/// # Errors
/// The database refused a statement (the transaction is rolled back: nothing half-applied).
pub async fn migrate(client: &mut Client) -> Result<usize, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS herald_schema_migrations (
             version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let applied: Vec<i64> =
        tx.query("SELECT version FROM herald_schema_migrations", &[]).await?.iter().map(|r| r.get(0)).collect();
    let mut ran = 0;
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO herald_schema_migrations (version, name) VALUES ($1, $2)", &[version, name]).await?;
        ran += 1;
    }
    tx.commit().await?;
    Ok(ran)
}
