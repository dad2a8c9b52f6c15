//! Authentication beyond user and password (`server::credentials_are_used_…`): a token, TLS
//! with a private CA and a client certificate, and a `.creds` file against a server in operator
//! mode (decentralised JWT authentication). The right credential connects and can use
//! JetStream; a wrong or missing one is fatal, with a message naming why.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use serde_json::json;
use stream::nats::NatsTls;
use testkit::TempDir;

use super::*;

#[tokio::test]
async fn a_token_is_used_and_a_wrong_or_missing_token_is_fatal() {
    // Arrange
    let server = NatsServer::start_with(&["--auth", "s3cret-token"])
        .await
        .unwrap();
    let with = |token: &str| config_with(&server, NatsAuth::Token(token.to_owned()));

    // Act
    let good = NatsLog::connect(with("s3cret-token")).await;
    let wrong = NatsLog::connect(with("wrong-token")).await;
    let none = NatsLog::connect(config(&server)).await;

    // Assert
    assert_uses_jetstream(&good.expect("the right token connects")).await;
    assert_fatal("wrong token", wrong, &["authorization violation"]);
    assert_fatal("no token", none, &["authorization violation"]);
}

#[tokio::test]
async fn tls_needs_the_servers_ca_and_a_client_certificate_when_the_server_verifies_clients() {
    // Arrange: a server with a certificate from a private CA that requires client certificates
    // from that CA.
    let pki = Pki::new();
    let [cert, key, ca] = ["server.pem", "server.key", "ca.pem"].map(|f| pki.arg(f));
    let server = NatsServer::start_with(&[
        "--tls",
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "--tlsverify",
        "--tlscacert",
        &ca,
    ])
    .await
    .unwrap();
    let with = |ca: bool, client_cert: bool| {
        let mut config = config(&server);
        config.tls = Some(NatsTls {
            ca_file: ca.then(|| pki.file("ca.pem")),
            client_cert: client_cert.then(|| (pki.file("client.pem"), pki.file("client.key"))),
        });
        config
    };

    // Act
    let good = NatsLog::connect(with(true, true)).await;
    let system_roots = NatsLog::connect(with(false, true)).await;
    let started = Instant::now();
    let no_client_cert = NatsLog::connect(with(true, false)).await;
    let refused_after = started.elapsed();

    // Assert
    assert_uses_jetstream(&good.expect("the CA and a client certificate connect")).await;
    assert_fatal(
        "the system's roots",
        system_roots,
        &["UnknownIssuer", "NATS_TLS_CA_FILE"],
    );
    assert_fatal(
        "no client certificate",
        no_client_cert,
        &["BadCertificate", "NATS_TLS_CERT_FILE"],
    );
    assert!(refused_after < Duration::from_secs(2), "{refused_after:?}");
}

#[tokio::test]
async fn a_credentials_file_is_used_in_operator_mode_and_an_unknown_or_missing_one_is_fatal() {
    // Arrange: an operator and an account with JetStream the server knows, a user of that
    // account, and a user of an account the server does not know.
    let dir = TempDir::new();
    let operator = Operator::new();
    let account = KeyPair::new_account();
    let good = write_creds(&dir.0, "good.creds", &account);
    let unknown = write_creds(&dir.0, "unknown.creds", &KeyPair::new_account());
    let missing = dir.0.join("missing.creds");
    let server_config = operator.server_config(&dir.0, &account);
    let server = NatsServer::start_with(&["-c", &server_config])
        .await
        .unwrap();
    let with = |creds: &Path| config_with(&server, NatsAuth::CredentialsFile(creds.to_owned()));

    // Act
    let good = NatsLog::connect(with(&good)).await;
    let unknown = NatsLog::connect(with(&unknown)).await;
    let absent = NatsLog::connect(with(&missing)).await;
    let none = NatsLog::connect(config(&server)).await;

    // Assert
    assert_uses_jetstream(&good.expect("the account's user connects")).await;
    assert_fatal("unknown account", unknown, &["authorization violation"]);
    let path = missing.display().to_string();
    assert_fatal("missing file", absent, &[&path, "No such file"]);
    assert_fatal("no credentials", none, &["authorization violation"]);
}

/// Creates a topic, publishes a record and reads it back: the connection can use JetStream.
async fn assert_uses_jetstream(log: &NatsLog) {
    log.ensure_topics(&["auth"]).await.unwrap();
    let written = log.produce("auth", 0, numbered(0..1)).await.unwrap();
    let read = read_from(log, "auth", 0, 0, 10).await;
    assert_eq!(written, [0]);
    assert_eq!(offsets(&read), [0]);
    assert_eq!(read[0].value.as_deref(), Some(&b"value-0"[..]));
}

/// A throwaway PKI made with the `openssl` CLI: a CA, a server certificate for `127.0.0.1` and
/// `localhost`, and a client certificate, as PEM files in a directory removed on drop.
struct Pki {
    dir: TempDir,
}

/// The certificates' extensions (only this file is read, not the system's `openssl.cnf`).
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign
[server]
basicConstraints = CA:FALSE
subjectAltName = IP:127.0.0.1, DNS:localhost
extendedKeyUsage = serverAuth
[client]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
";

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new();
        std::fs::write(dir.0.join("openssl.cnf"), OPENSSL_CNF).unwrap();
        for (name, signed_by_ca) in [("ca", false), ("server", true), ("client", true)] {
            let mut command = Command::new("openssl");
            command.current_dir(&dir.0).args([
                "req",
                "-config",
                "openssl.cnf",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "1",
                "-subj",
                &format!("/CN=taskstream-test-{name}"),
                "-extensions",
                name,
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
            ]);
            if signed_by_ca {
                command.args(["-CA", "ca.pem", "-CAkey", "ca.key"]);
            }
            let output = command.output().expect("openssl runs");
            assert!(
                output.status.success(),
                "openssl {name}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Pki { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// The file's path as a command-line argument.
    fn arg(&self, name: &str) -> String {
        self.file(name).display().to_string()
    }
}

/// An operator, with the system account JetStream needs in operator mode, whose accounts
/// the server knows from its configuration (`resolver: MEMORY`).
struct Operator {
    key: KeyPair,
    system: KeyPair,
}

impl Operator {
    fn new() -> Operator {
        Operator {
            key: KeyPair::new_operator(),
            system: KeyPair::new_account(),
        }
    }

    /// The JWT of `account`, signed by the operator, without limits. JetStream limits (here
    /// unlimited) enable JetStream for the account, so they are only there when `jetstream`.
    fn account_jwt(&self, account: &KeyPair, name: &str, jetstream: bool) -> String {
        let mut limits = json!({
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
        });
        if jetstream {
            for limit in ["mem_storage", "disk_storage", "streams", "consumer"] {
                limits[limit] = json!(-1);
            }
        }
        jwt(
            &self.key,
            &account.public_key(),
            name,
            json!({"type": "account", "version": 2, "limits": limits}),
        )
    }

    /// Writes the operator's JWT and a server configuration trusting it and knowing `account`
    /// (with JetStream) and the system account into `dir`; returns the configuration's path.
    fn server_config(&self, dir: &Path, account: &KeyPair) -> String {
        let operator_jwt = dir.join("operator.jwt");
        let claims = json!({"type": "operator", "version": 2});
        let operator_jwt_text = jwt(&self.key, &self.key.public_key(), "taskstream-test", claims);
        std::fs::write(&operator_jwt, operator_jwt_text).unwrap();
        let text = format!(
            "operator: \"{}\"\n\
             system_account: {system}\n\
             resolver: MEMORY\n\
             resolver_preload: {{\n  {account}: {account_jwt}\n  {system}: {system_jwt}\n}}\n",
            operator_jwt.display(),
            system = self.system.public_key(),
            account = account.public_key(),
            account_jwt = self.account_jwt(account, "taskstream", true),
            system_jwt = self.account_jwt(&self.system, "SYS", false),
        );
        let path = dir.join("nats-server.conf");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

/// A `.creds` file, as `nsc` writes it, for a new user issued by `account`.
fn write_creds(dir: &Path, file: &str, account: &KeyPair) -> PathBuf {
    let user = KeyPair::new_user();
    let jwt = jwt(
        account,
        &user.public_key(),
        "relay",
        json!({
            "type": "user", "version": 2, "pub": {}, "sub": {},
            "subs": -1, "data": -1, "payload": -1,
        }),
    );
    let seed = user.seed().unwrap();
    let text = format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    );
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// A NATS JWT (v2): `{"typ":"JWT","alg":"ed25519-nkey"}`, the claims, and the issuer's ed25519
/// signature of both, each base64url without padding.
fn jwt(issuer: &KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let header = json!({"typ": "JWT", "alg": "ed25519-nkey"});
    let claims = json!({
        "jti": uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
        "iat": Utc::now().timestamp(),
        "iss": issuer.public_key(),
        "sub": subject,
        "name": name,
        "nats": nats,
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}
