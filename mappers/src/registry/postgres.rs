//! The PostgreSQL registry (sqlx), for repositories shared by many nodes.

use std::path::Path;

use daf_base::DataIdValue;
use daf_storages::db::{DbAuth, PgLink};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Row as _, TypeInfo, ValueRef};

use super::{build_select, redact_url, validate_identifier, ColumnType, Lookup, Registry, Row};
use crate::MapperError;

/// A registry in a PostgreSQL database, optionally inside one schema.
///
/// Its connections come from a [`PgLink`] (daf's one database connection
/// layer: credentials from [`DbAuth`], TLS, connect and statement timeouts,
/// a private current-thread tokio runtime), pooled, so the API stays
/// synchronous like the other registries.
pub struct PgRegistry {
    pool: PgPool,
    link: PgLink,
    schema: Option<String>,
    described: String,
}

impl std::fmt::Debug for PgRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRegistry")
            .field("url", &self.described)
            .field("schema", &self.schema)
            .finish()
    }
}

/// The contents of a Gen2 `registry.pgsql` file.
#[derive(Debug, serde::Deserialize)]
struct PgsqlFile {
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    database: String,
    user: String,
    #[serde(default)]
    password: Option<String>,
}

fn default_port() -> u16 {
    5432
}

impl PgRegistry {
    /// Connects to `url`
    /// (`postgresql://[user[:password]@]host[:port]/db[?options]`, options as
    /// for [`daf_storages::db::ConnOptions`]: `sslmode`, `sslrootcert`,
    /// `connect_timeout`, `statement_timeout`); with `schema`, every table
    /// name is qualified with it. Credentials: a password in the URL, else
    /// `auth`'s entry for the server, else libpq's environment (see
    /// [`PgLink::new`]).
    pub fn connect(url: &str, schema: Option<&str>, auth: &DbAuth) -> Result<Self, MapperError> {
        let shown = redact_url(url);
        if let Some(s) = schema {
            validate_identifier(s)?;
        }
        let link = PgLink::new(url, auth)
            .map_err(|x| MapperError::registry_source(shown.clone(), "bad registry location", x))?;
        let described = link.described();
        let pool = link
            .run(
                PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(link.acquire_timeout())
                    .connect_with(link.connect_options().clone()),
            )
            .map_err(|x| {
                MapperError::registry_source(
                    described.clone(),
                    "cannot connect",
                    link.connect_error(x),
                )
            })?;
        Ok(PgRegistry {
            pool,
            link,
            schema: schema.map(str::to_string),
            described,
        })
    }

    /// Connects with the settings of a Gen2 `registry.pgsql` YAML file
    /// (`host`, `port`, `database`, `user`, optional `password`); without a
    /// password, `auth`'s entry for the server (or libpq's environment) is
    /// used.
    pub fn from_pgsql_file(path: &Path, auth: &DbAuth) -> Result<Self, MapperError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|x| MapperError::registry_source(shown.clone(), "cannot read", x))?;
        let cfg: PgsqlFile = serde_norway::from_str(&text)
            .map_err(|x| MapperError::registry_source(shown.clone(), "malformed", x))?;
        let mut auth = auth.clone();
        if let Some(p) = &cfg.password {
            let mut only = DbAuth::new();
            only.add(&cfg.host, cfg.port, &cfg.user, p);
            auth = only;
        }
        let url = format!(
            "postgresql://{}@{}:{}/{}",
            cfg.user, cfg.host, cfg.port, cfg.database
        );
        Self::connect(&url, None, &auth)
    }

    /// Creates the schema given at connection time, if any.
    pub fn create_schema(&self) -> Result<(), MapperError> {
        if let Some(s) = &self.schema {
            self.execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{s}\""))?;
        }
        Ok(())
    }

    /// Drops the schema given at connection time and everything in it.
    pub fn drop_schema(&self) -> Result<(), MapperError> {
        if let Some(s) = &self.schema {
            self.execute(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"))?;
        }
        Ok(())
    }

    fn qualify(&self, table: &str) -> String {
        match &self.schema {
            Some(s) => format!("\"{s}\".\"{table}\""),
            None => format!("\"{table}\""),
        }
    }

    fn e(&self, m: impl std::fmt::Display) -> MapperError {
        MapperError::Registry {
            registry: self.described.clone(),
            message: self.link.scrub(m.to_string()),
            source: None,
        }
    }

    /// A driver error, kept as the source.
    fn es(&self, x: sqlx::Error) -> MapperError {
        MapperError::Registry {
            registry: self.described.clone(),
            message: self.link.scrub(x.to_string()),
            source: Some(Box::new(x)),
        }
    }

    fn execute(&self, sql: &str) -> Result<(), MapperError> {
        self.link
            .block_on(sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&self.pool))
            .map_err(|x| self.es(x))?;
        Ok(())
    }
}

fn placeholder(n: usize, v: &DataIdValue) -> String {
    match v {
        DataIdValue::Int(_) => format!("${n}::int8"),
        DataIdValue::Float(_) => format!("${n}::float8"),
        DataIdValue::Str(_) => format!("${n}::text"),
    }
}

fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    v: &DataIdValue,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    match v {
        DataIdValue::Int(i) => q.bind(*i),
        DataIdValue::Float(f) => q.bind(*f),
        DataIdValue::Str(s) => q.bind(s.clone()),
    }
}

fn decode(row: &PgRow, i: usize, column: &str) -> Result<DataIdValue, String> {
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Err(format!("NULL in column {column:?}"));
    }
    let ty = raw.type_info().name().to_string();
    let r = match ty.as_str() {
        "INT2" => row.try_get::<i16, _>(i).map(|v| DataIdValue::Int(v.into())),
        "INT4" => row.try_get::<i32, _>(i).map(|v| DataIdValue::Int(v.into())),
        "INT8" => row.try_get::<i64, _>(i).map(DataIdValue::Int),
        "FLOAT4" => row
            .try_get::<f32, _>(i)
            .map(|v| DataIdValue::Float(v.into())),
        "FLOAT8" => row.try_get::<f64, _>(i).map(DataIdValue::Float),
        _ => row.try_get::<String, _>(i).map(DataIdValue::Str),
    };
    r.map_err(|e| format!("column {column:?} of type {ty}: {e}"))
}

impl Registry for PgRegistry {
    fn describe(&self) -> String {
        match &self.schema {
            Some(s) => format!("{} (schema {s})", self.described),
            None => self.described.clone(),
        }
    }

    fn lookup_query(&self, query: &Lookup<'_>) -> Result<Vec<Row>, MapperError> {
        let sql = build_select(query, &|t| self.qualify(t), &placeholder)?;
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (_, v) in query.data_id.iter() {
            q = bind(q, v);
        }
        if let Some(r) = query.valid_range {
            q = bind(q, &r.obs_time);
        }
        let rows = self
            .link
            .block_on(q.fetch_all(&self.pool))
            .map_err(|x| self.es(x))?;
        let mut out = rows
            .iter()
            .map(|row| {
                query
                    .properties
                    .iter()
                    .enumerate()
                    .map(|(i, p)| decode(row, i, p).map_err(|m| self.e(m)))
                    .collect()
            })
            .collect::<Result<Vec<Row>, MapperError>>()?;
        super::sort_rows(&mut out);
        Ok(out)
    }

    fn columns(&self, table: &str) -> Result<Vec<String>, MapperError> {
        let table = validate_identifier(table)?;
        let schema = self.schema.clone().unwrap_or_else(|| "public".into());
        let q = sqlx::query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        )
        .bind(schema)
        .bind(table.to_string());
        let rows = self
            .link
            .block_on(q.fetch_all(&self.pool))
            .map_err(|x| self.es(x))?;
        let cols: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(|x| self.es(x))?;
        if cols.is_empty() {
            return Err(self.e(format!("no such table: {table}")));
        }
        Ok(cols)
    }

    fn create_table(
        &self,
        table: &str,
        columns: &[(String, ColumnType)],
        unique: &[String],
    ) -> Result<(), MapperError> {
        let q = self.qualify(validate_identifier(table)?);
        let sql = super::create_table_sql(
            table,
            &q,
            columns,
            unique,
            "id BIGSERIAL PRIMARY KEY",
            |ty| match ty {
                ColumnType::Int => "BIGINT",
                ColumnType::Float => "DOUBLE PRECISION",
                ColumnType::Text => "TEXT",
            },
        )?;
        self.execute(&sql)
    }

    fn insert_rows(
        &self,
        table: &str,
        columns: &[String],
        rows: &[Row],
    ) -> Result<(), MapperError> {
        let q = self.qualify(validate_identifier(table)?);
        let cols = super::quoted_columns(columns)?;
        self.link
            .timed(async {
                let mut tx = self.pool.begin().await.map_err(|x| self.es(x))?;
                for row in rows {
                    super::check_row_len(row, cols.len()).map_err(|m| self.e(m))?;
                    let marks: Vec<String> = row
                        .iter()
                        .enumerate()
                        .map(|(i, v)| placeholder(i + 1, v))
                        .collect();
                    let sql = format!(
                        "INSERT INTO {q} ({}) VALUES ({})",
                        cols.join(", "),
                        marks.join(", ")
                    );
                    let mut query = sqlx::query(AssertSqlSafe(sql));
                    for v in row {
                        query = bind(query, v);
                    }
                    query.execute(&mut *tx).await.map_err(|x| self.es(x))?;
                }
                tx.commit().await.map_err(|x| self.es(x))
            })
            .map_err(|x| self.es(x))?
    }
}
