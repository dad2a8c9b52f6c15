//! `taskstream`: the gateway binary. Parses flags, initialises logging, runs.

use clap::Parser;
use graphql::config::{Cli, Command, EventsCommand};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Schema) => {
            print!("{}", graphql::schema::sdl());
            Ok(())
        }
        Some(Command::Token { sub, hours }) => {
            let secret = cli.server.jwt_secret.as_deref().ok_or_else(|| {
                anyhow::anyhow!("JWT_SECRET must be set to sign a token (taskstream token --help)")
            })?;
            let auth = graphql::auth::Authenticator::hs256(secret.as_bytes())?;
            let token = auth
                .issue_token(&sub, std::time::Duration::from_secs(hours * 3600))
                .ok_or_else(|| anyhow::anyhow!("this authenticator cannot issue tokens"))?;
            println!("{token}");
            Ok(())
        }
        Some(Command::Relay) => {
            let _telemetry =
                graphql::startup::init_tracing(&cli.server.log_level, &cli.server.log_format)?;
            graphql::startup::run_relay_only(cli.server).await
        }
        Some(Command::Events {
            command:
                EventsCommand::Tail {
                    topic,
                    limit,
                    follow,
                },
        }) => {
            let _telemetry = graphql::startup::init_tracing("warn", &cli.server.log_format)?;
            let broker = graphql::events::broker_config(&cli.server)?;
            let db = graphql::db::connect_existing(&cli.server.database_url).await?;
            graphql::events::tail(db, broker, &topic, limit, follow).await
        }
        Some(Command::Dlq { command }) => {
            let _telemetry = graphql::startup::init_tracing("warn", &cli.server.log_format)?;
            let db = graphql::db::connect_existing(&cli.server.database_url).await?;
            graphql::dlq::run(&db, command).await
        }
        Some(Command::Serve) | None => {
            let _telemetry =
                graphql::startup::init_tracing(&cli.server.log_level, &cli.server.log_format)?;
            graphql::startup::run(cli.server).await
        }
    }
}
