//! The PostgreSQL test harness itself (testkit/src/postgres.rs): a
//! private server, fresh databases on it, node loss and recovery, and the
//! same server used as a shared one.

use std::time::Instant;

use crate::common::postgres::{Postgres, psql_at};

#[test]
fn private_server_databases_kill_and_restart() {
    let t = Instant::now();
    let mut pg = Postgres::start();
    eprintln!("Postgres::start took {:?}", t.elapsed());
    assert!(pg.is_owned());

    let a = pg.create_database();
    let b = pg.create_database();
    assert_ne!(a, b);
    for url in [&a, &b] {
        assert!(url.starts_with(&format!("postgres://postgres@127.0.0.1:{}/t_", pg.port)));
        assert_eq!(psql_at(url, "select 1").unwrap(), "1");
    }
    psql_at(&a, "create table t (x int); insert into t values (42)").unwrap();

    pg.kill();
    assert!(psql_at(&a, "select 1").is_err(), "killed, yet answering");
    let t = Instant::now();
    pg.restart();
    eprintln!("Postgres::restart took {:?}", t.elapsed());
    assert_eq!(psql_at(&a, "select x from t").unwrap(), "42");
    assert_eq!(psql_at(&b, "select 1").unwrap(), "1");

    // The same server as a shared one ($TEST_POSTGRES_URL): databases
    // on it, and dropping the handle leaves the server running.
    let shared = Postgres::shared(&format!(
        "postgres://postgres@127.0.0.1:{}/ignored",
        pg.port
    ));
    assert!(!shared.is_owned());
    assert_eq!(shared.port, pg.port);
    let c = shared.create_database();
    assert_eq!(psql_at(&c, "select 1").unwrap(), "1");
    drop(shared);
    assert_eq!(psql_at(&a, "select x from t").unwrap(), "42");
}
