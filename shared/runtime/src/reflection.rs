//! gRPC reflection over what one process actually serves: health,
//! reflection itself and the service's own API, described by the API's
//! proto file and the files it imports — not the whole contract, so a
//! client listing services sees only those it can call here.

use std::collections::BTreeSet;

use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use tonic_reflection::server::v1::{ServerReflection, ServerReflectionServer};

/// The fully-qualified name of the health service.
pub const HEALTH: &str = "grpc.health.v1.Health";
/// The fully-qualified name of the reflection service.
pub const REFLECTION: &str = "grpc.reflection.v1.ServerReflection";

/// The reflection service for a process serving `api` (a fully-qualified
/// service name of the kesu contract, e.g. `kesu.v1.TicketService`).
pub(crate) fn server(api: &str) -> ServerReflectionServer<impl ServerReflection> {
    let contract = FileDescriptorSet::decode(kesu_proto::FILE_DESCRIPTOR_SET)
        .expect("the embedded contract descriptor set is valid");
    tonic_reflection::server::Builder::configure()
        .register_file_descriptor_set(files_of(&contract, api))
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(HEALTH)
        .with_service_name(REFLECTION)
        .with_service_name(api)
        .build_v1()
        .expect("the embedded descriptor sets are valid")
}

/// The file defining service `api` and every file it imports, directly or not.
fn files_of(contract: &FileDescriptorSet, api: &str) -> FileDescriptorSet {
    let defines = |f: &FileDescriptorProto| f.service.iter().any(|s| format!("{}.{}", f.package(), s.name()) == api);
    let root = contract.file.iter().find(|f| defines(f)).unwrap_or_else(|| panic!("{api} is not in the contract"));
    let mut wanted = BTreeSet::from([root.name().to_string()]);
    let mut queue = vec![root];
    while let Some(file) = queue.pop() {
        for dep in &file.dependency {
            if wanted.insert(dep.clone())
                && let Some(found) = contract.file.iter().find(|f| f.name() == dep)
            {
                queue.push(found);
            }
        }
    }
    FileDescriptorSet { file: contract.file.iter().filter(|f| wanted.contains(f.name())).cloned().collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_gets_its_file_and_imports_only() {
        let contract = FileDescriptorSet::decode(kesu_proto::FILE_DESCRIPTOR_SET).unwrap();
        let files = files_of(&contract, "kesu.v1.TicketService");
        let services: Vec<String> =
            files.file.iter().flat_map(|f| f.service.iter().map(|s| s.name().to_string())).collect();
        assert_eq!(services, ["TicketService"]);
        assert!(files.file.iter().any(|f| f.name().ends_with("common.proto")), "imports come along");
    }
}
