//! Staff tokens and roles on a service's gRPC API: the layer `grpc_router`
//! puts in front of every RPC, built from the service's `AUTH_*` settings,
//! its role table and its database (for the audit log).

use kesu_auth::RoleTable;
use tonic::transport::server::Router;
use tower_layer::{Identity, Stack};

use crate::ServiceCore;

pub use kesu_auth::AuthLayer;

/// The gRPC router every service serves: its routes behind [`AuthLayer`].
pub type GrpcRouter = Router<Stack<AuthLayer, Identity>>;

impl ServiceCore {
    /// The auth layer enforcing `table` (the service's `roles::TABLE`) with
    /// this service's token settings, auditing into its database.
    pub fn auth_layer(&self, table: &'static RoleTable) -> AuthLayer {
        AuthLayer::new(self.config.auth.verifier.clone(), &[table], self.db.clone())
    }
}
