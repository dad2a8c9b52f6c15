//! `cargo run -p migration -- up|down|status|fresh|refresh|reset` against `DATABASE_URL`
//! (or `-u URL`).

use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    cli::run_cli(migration::Migrator).await;
}
