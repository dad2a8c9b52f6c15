//! `migration up|down|status|fresh|refresh|reset` against `DATABASE_URL` (or `-u URL`):
//! sea-orm-migration's commands, plus `--grant-to ROLE` (PostgreSQL), which grants the
//! application's login role its privileges after migrating ([`migration::app_role`]).

use std::process::ExitCode;

use clap::Parser;
use migration::app_role::AppRole;
use sea_orm_cli::MigrateSubcommands;
use sea_orm_migration::sea_orm::{ConnectOptions, Database};

/// Taskstream's database migrations. Run it as the role that owns the schema (the server's
/// admin); the application itself can then connect as a role that only reads and writes rows.
#[derive(Debug, Parser)]
#[command(name = "migration", version, about, long_about)]
struct Cli {
    /// Show debug messages.
    #[arg(short = 'v', long, global = true)]
    verbose: bool,

    /// Database URL of the schema's owner: `postgres://ADMIN@HOST/DB` or `sqlite://FILE`
    /// (required).
    #[arg(
        short = 'u',
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    database_url: Option<String>,

    /// PostgreSQL schema the tables live in (ignored on SQLite).
    #[arg(
        short = 's',
        long,
        env = "DATABASE_SCHEMA",
        default_value = "public",
        global = true
    )]
    database_schema: String,

    /// After `up` (the default), `fresh` or `refresh`, grant the application's login role
    /// ROLE what it needs and nothing more: SELECT, INSERT, UPDATE, DELETE on every table,
    /// USAGE, SELECT on every sequence, EXECUTE on every function of the schema, nothing on
    /// the migration history. Every run grants again, so tables added later are covered.
    /// PostgreSQL only; the role must exist (`CREATE ROLE <name> LOGIN PASSWORD '...'`).
    #[arg(
        long,
        env = "TASKSTREAM_APP_DB_ROLE",
        value_name = "ROLE",
        global = true
    )]
    grant_to: Option<String>,

    #[command(subcommand)]
    command: Option<MigrateSubcommands>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let url = cli
        .database_url
        .ok_or("DATABASE_URL is not set: pass the schema owner's URL in DATABASE_URL or -u URL")?;
    let options = ConnectOptions::new(url)
        .set_schema_search_path(cli.database_schema)
        .to_owned();
    let db = Database::connect(options).await?;
    // Checked before migrating, so a wrong role or database changes nothing.
    let role = match &cli.grant_to {
        Some(name) => Some(AppRole::find(&db, name).await?),
        None => None,
    };
    let creates_tables = matches!(
        cli.command,
        None | Some(
            MigrateSubcommands::Up { .. } | MigrateSubcommands::Fresh | MigrateSubcommands::Refresh
        )
    );
    sea_orm_migration::cli::run_migrate(migration::Migrator, &db, cli.command, cli.verbose).await?;
    if let (Some(role), true) = (role, creates_tables) {
        role.grant(&db).await?;
        println!(
            "Granted the application role {:?} its privileges",
            role.name()
        );
    }
    db.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
