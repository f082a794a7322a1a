//! `DbStorage`, the LSST database storage: rows inserted in a transaction,
//! then queried back with a bound parameter. SQLite by default (a file in
//! the temporary folder); give a `postgresql://host:port/db` or
//! `mysql://host:port/db` location to use a server (credentials from
//! `~/.daf/db-auth.yaml`, never from the URL).
//!
//! ```text
//! cargo run --example db_storage [-- LOCATION]
//! ```

use std::sync::Arc;

use daf::storages::db::{DbAuth, DbStorage};
use daf::storages::Storage;

/// Writes three sources into a new table `table` at `location` and returns
/// the ids and fluxes of those brighter than 2.0; drops the table.
/// Credentials for a server come from `auth` (default: the auth file).
pub fn run(
    location: &str,
    table: &str,
    auth: Option<Arc<DbAuth>>,
) -> Result<Vec<(i64, f64)>, Box<dyn std::error::Error>> {
    let mut db = DbStorage::open_url(location, auth)?;
    db.execute_sql(&format!(
        "CREATE TABLE {table} (id BIGINT, flux DOUBLE PRECISION, name VARCHAR(16))"
    ))?;
    db.start_transaction()?;
    db.set_table_for_insert(table)?;
    for (id, flux, name) in [(1_i64, 1.5, "a"), (2, 2.5, "b"), (3, 4.0, "c")] {
        db.set_column("id", id)?;
        db.set_column("flux", flux)?;
        db.set_column("name", name)?;
        db.insert_row()?;
    }
    db.end_transaction()?;

    db.set_table_for_query(table)?;
    db.out_column("id")?;
    db.out_column("flux")?;
    db.cond_param("lo", 2.0_f64)?;
    db.set_query_where("flux > :lo")?;
    db.order_by("id")?;
    db.query()?;
    let mut out = Vec::new();
    while db.next()? {
        out.push((
            db.get_column_by_pos::<i64>(0)?,
            db.get_column_by_pos::<f64>(1)?,
        ));
    }
    db.finish_query();
    db.drop_table(table)?;
    Ok(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = std::env::temp_dir().join(format!("daf-example-{}.sqlite3", std::process::id()));
    let location = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("sqlite://{}", file.display()));
    let rows = run(&location, "example_sources", None)?;
    for (id, flux) in &rows {
        println!("source {id}: flux {flux}");
    }
    let _ = std::fs::remove_file(&file);
    Ok(())
}
