//! A PostgreSQL client session through an SSH tunnel: the controller reaches a server that
//! listens only on the internal network, and logs in with a role's own password (SCRAM). Used to
//! check that a role's password is the one the inventory says and that the server answers from
//! the node network, not just on the database host's loopback.

use tokio_postgres::{Client, NoTls};

use crate::secrets::Secret;
use crate::transport::NodeSession;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no tunnel to PostgreSQL at {endpoint} through {via}: {message}")]
    Tunnel { via: String, endpoint: String, message: String },
    #[error("PostgreSQL at {endpoint} refused {user}: {message}")]
    Refused { endpoint: String, user: String, message: String },
    /// The tunnel broke during the login (the bastion or the host went away): no word from the server.
    #[error("the connection to PostgreSQL at {endpoint} was lost while {user} logged in: {message}")]
    Lost { endpoint: String, user: String, message: String },
}

impl ClientError {
    /// The server said the credentials are wrong (as opposed to: it could not be reached).
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, ClientError::Refused { message, .. } if message.contains("password authentication failed"))
    }

    /// The way to the server failed, not the server: the caller reconnects and tries again.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, ClientError::Tunnel { .. } | ClientError::Lost { .. })
    }
}

/// Logs in as `user` to `database` on `host:port` as `via` reaches it.
pub async fn connect(
    via: &NodeSession,
    host: &str,
    port: u16,
    user: &str,
    password: &Secret,
    database: &str,
) -> Result<Client, ClientError> {
    let endpoint = format!("{host}:{port}");
    let stream = via.forward(host, port).await.map_err(|e| ClientError::Tunnel {
        via: via.target.name.clone(),
        endpoint: endpoint.clone(),
        message: e.to_string(),
    })?;
    let mut config = tokio_postgres::Config::new();
    config.user(user).password(password.expose()).dbname(database).application_name("groundwork");
    let (client, connection) = config.connect_raw(stream, NoTls).await.map_err(|e| match e.as_db_error() {
        // The server's own words ("password authentication failed for user ..."); no secret in them.
        Some(db) => ClientError::Refused { endpoint, user: user.to_string(), message: db.message().to_string() },
        None => ClientError::Lost { endpoint, user: user.to_string(), message: e.to_string() },
    })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}
