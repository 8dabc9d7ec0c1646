//! The Kubernetes objects of the handoff, built as k8s-openapi types:
//! `manifests/storage.yaml` (the default StorageClass and one PersistentVolume per volume, each
//! pre-bound to the DIGIT claim it is for), `manifests/database.yaml` (the namespace and
//! `db-service`, which points at the PostgreSQL host) and `manifests/secrets.yaml` (the iSCSI
//! CHAP Secret). Only what DIGIT does not render itself: its `configmaps` release makes the `db`
//! Secret from `secrets.db`, so groundwork does not.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ISCSIPersistentVolumeSource, NFSVolumeSource, Namespace,
    ObjectReference, PersistentVolume, PersistentVolumeSpec, Secret, SecretReference, Service, ServicePort,
    ServiceSpec,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Content, DatabaseFacts, HandoffError, HandoffInputs, MANIFEST_SECRETS_REGEX, Rendered, yaml};
use crate::inventory::values::ByteSize;
use crate::storage::{PlannedVolume, VolumeAccess};

pub const STORAGE: &str = "manifests/storage.yaml";
pub const DATABASE: &str = "manifests/database.yaml";
pub const SECRETS: &str = "manifests/secrets.yaml";

/// The default StorageClass, which the PersistentVolumes of claims without a class carry.
pub const STATIC_CLASS: &str = "groundwork-static";
/// Name of the Secret DIGIT's `configmaps` release renders from `secrets.db` (not groundwork's).
pub const DB_SECRET: &str = "db";
pub const DB_SERVICE: &str = "db-service";
/// DIGIT's services connect to 5432 whatever port PostgreSQL listens on; the Service maps it.
pub const DB_SERVICE_PORT: u16 = 5432;
const CHAP_SECRET: &str = "iscsi-chap";
const CHAP_NAMESPACE: &str = "kube-system";

pub fn render(inputs: &HandoffInputs, out: &mut Rendered) -> Result<(), HandoffError> {
    if let Some(plan) = &inputs.volumes {
        let mut docs = Vec::new();
        // The deployer flow's charts make their own PersistentVolumes for the same IQNs.
        let charts_make_pvs = inputs.digit.as_ref().is_some_and(|d| d.flow == crate::inventory::DigitFlow::Deployer);
        for class in storage_classes(!charts_make_pvs) {
            docs.push(yaml::document("a StorageClass", &class)?);
        }
        let chap = inputs.iscsi_chap.is_some();
        // With DIGIT's claims known, a volume no chart claims gets no PersistentVolume: nothing
        // would bind it but a stray claim.
        let claimed = plan.volumes.iter().any(|v| v.claim.is_some());
        for volume in plan.volumes.iter().filter(|v| !charts_make_pvs && (!claimed || v.claim.is_some())) {
            docs.push(yaml::document("a PersistentVolume", &persistent_volume(volume, chap))?);
        }
        out.add(STORAGE, yaml::documents(&docs), Content::Plain);
    }
    let mut secrets = Vec::new();
    if let Some(db) = &inputs.database {
        let docs = [
            yaml::document("the namespace", &namespace(&inputs.namespace))?,
            yaml::document("db-service", &db_service(db, &inputs.namespace))?,
        ];
        let mut docs = docs.to_vec();
        if let Some(endpoints) = db_endpoints(db, &inputs.namespace) {
            docs.push(yaml::document("db-service's Endpoints", &endpoints)?);
        }
        out.add(DATABASE, yaml::documents(&docs), Content::Plain);
    }
    if let (Some(chap), Some(_)) = (&inputs.iscsi_chap, &inputs.volumes) {
        secrets.push(yaml::document("the iSCSI CHAP Secret", &chap_secret(chap))?);
    }
    if !secrets.is_empty() {
        out.add(SECRETS, yaml::documents(&secrets), Content::Secret { encrypted_regex: MANIFEST_SECRETS_REGEX });
    }
    Ok(())
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(BTreeMap::from([("app.kubernetes.io/managed-by".to_string(), "groundwork".to_string())])),
        ..ObjectMeta::default()
    }
}

/// A Kubernetes quantity that is exactly the size: `50Gi` when a binary unit divides it, else bytes.
pub fn quantity(size: ByteSize) -> Quantity {
    const UNITS: [(&str, u64); 4] = [("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)];
    let bytes = size.bytes();
    let text = UNITS
        .iter()
        .find(|(_, factor)| bytes >= *factor && bytes.is_multiple_of(*factor))
        .map(|(unit, factor)| format!("{}{unit}", bytes / factor))
        .unwrap_or_else(|| bytes.to_string());
    Quantity(text)
}

/// The default class: no provisioner, so a claim binds only to a volume made for it (the site
/// is air-gapped: no CSI driver to download). DIGIT's claims without a class get it, and their
/// pre-bound volumes carry it.
///
/// Not the default in the Go-deployer flow: there the charts' PersistentVolumes carry no class,
/// and a claim given a default class would not bind to them.
fn storage_classes(default: bool) -> Vec<StorageClass> {
    let mut metadata = meta(STATIC_CLASS, None);
    if default {
        metadata.annotations =
            Some(BTreeMap::from([("storageclass.kubernetes.io/is-default-class".to_string(), "true".to_string())]));
    }
    vec![StorageClass {
        metadata,
        provisioner: "kubernetes.io/no-provisioner".into(),
        reclaim_policy: Some("Retain".into()),
        volume_binding_mode: Some("WaitForFirstConsumer".into()),
        ..StorageClass::default()
    }]
}

fn persistent_volume(volume: &PlannedVolume, chap: bool) -> PersistentVolume {
    let mut metadata = meta(&volume.name, None);
    if let Some(labels) = metadata.labels.as_mut() {
        labels.insert("groundwork.io/component".into(), volume.component.clone());
        labels.insert("groundwork.io/volume".into(), volume.name.clone());
    }
    // Pre-bound to its claim, with the claim's class (the default class when the chart sets none).
    let class = volume.claim.as_ref().and_then(|c| c.storage_class.clone()).unwrap_or_else(|| STATIC_CLASS.into());
    let claim_ref = volume.claim.as_ref().map(|c| ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: Some(c.namespace.clone()),
        name: Some(c.name.clone()),
        ..ObjectReference::default()
    });
    if let (Some(labels), Some(c)) = (metadata.labels.as_mut(), &volume.claim) {
        labels.insert("groundwork.io/release".into(), c.release.clone());
    }
    let mut spec = PersistentVolumeSpec {
        capacity: Some(BTreeMap::from([("storage".to_string(), quantity(volume.size))])),
        persistent_volume_reclaim_policy: Some("Retain".into()),
        storage_class_name: Some(class),
        volume_mode: Some("Filesystem".into()),
        claim_ref,
        ..PersistentVolumeSpec::default()
    };
    match &volume.access {
        VolumeAccess::Iscsi { iqn, lun, portal } => {
            spec.access_modes = Some(vec!["ReadWriteOnce".into()]);
            spec.iscsi = Some(ISCSIPersistentVolumeSource {
                target_portal: portal.clone(),
                iqn: iqn.clone(),
                lun: i32::try_from(*lun).unwrap_or(i32::MAX),
                fs_type: Some("ext4".into()),
                chap_auth_session: chap.then_some(true),
                secret_ref: chap.then(|| SecretReference {
                    name: Some(CHAP_SECRET.into()),
                    namespace: Some(CHAP_NAMESPACE.into()),
                }),
                ..ISCSIPersistentVolumeSource::default()
            });
        }
        VolumeAccess::Nfs { server, path } => {
            spec.access_modes = Some(vec!["ReadWriteMany".into()]);
            spec.nfs =
                Some(NFSVolumeSource { server: server.clone(), path: path.display().to_string(), read_only: None });
        }
    }
    PersistentVolume { metadata, spec: Some(spec), status: None }
}

fn namespace(name: &str) -> Namespace {
    Namespace { metadata: meta(name, None), ..Namespace::default() }
}

/// A Service without a selector, so its Endpoints can name the database host; a host given by
/// DNS name instead gets an ExternalName Service (Endpoints take only addresses).
fn db_service(db: &DatabaseFacts, namespace: &str) -> Service {
    let port = ServicePort {
        name: Some("postgresql".into()),
        port: i32::from(DB_SERVICE_PORT),
        protocol: Some("TCP".into()),
        target_port: Some(IntOrString::Int(i32::from(db.port))),
        ..ServicePort::default()
    };
    let spec = if db.address.parse::<IpAddr>().is_ok() {
        ServiceSpec { ports: Some(vec![port]), ..ServiceSpec::default() }
    } else {
        ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some(db.address.clone()),
            ports: Some(vec![port]),
            ..ServiceSpec::default()
        }
    };
    Service { metadata: meta(DB_SERVICE, Some(namespace)), spec: Some(spec), status: None }
}

fn db_endpoints(db: &DatabaseFacts, namespace: &str) -> Option<Endpoints> {
    db.address.parse::<IpAddr>().ok()?;
    let subset = EndpointSubset {
        addresses: Some(vec![EndpointAddress { ip: db.address.clone(), ..EndpointAddress::default() }]),
        ports: Some(vec![EndpointPort {
            name: Some("postgresql".into()),
            port: i32::from(db.port),
            protocol: Some("TCP".into()),
            ..EndpointPort::default()
        }]),
        ..EndpointSubset::default()
    };
    Some(Endpoints { metadata: meta(DB_SERVICE, Some(namespace)), subsets: Some(vec![subset]) })
}

fn chap_secret(chap: &super::Credentials) -> Secret {
    // The kubelet's iSCSI plugin reads these key names.
    let data = BTreeMap::from([
        ("node.session.auth.username".to_string(), chap.user.clone()),
        ("node.session.auth.password".to_string(), chap.password.expose().to_string()),
    ]);
    Secret {
        metadata: meta(CHAP_SECRET, Some(CHAP_NAMESPACE)),
        type_: Some("kubernetes.io/iscsi-chap".into()),
        string_data: Some(data),
        ..Secret::default()
    }
}
