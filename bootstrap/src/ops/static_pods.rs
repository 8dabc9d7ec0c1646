//! The control plane's static pods stopped and started by hand, as kubeadm's documentation does
//! for an etcd restore or a certificate renewal: their manifests moved out of the kubelet's
//! manifest directory (the kubelet stops them) and back (it starts them). Shell lines for a
//! master; each is idempotent, so a run stopped between them is finished by running it again.

const MANIFESTS: &str = "/etc/kubernetes/manifests";
const PARKED: &str = "/etc/kubernetes/groundwork/parked";
const STATIC_PODS: [&str; 3] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"];

fn moves(from: &str, to: &str) -> String {
    STATIC_PODS
        .iter()
        .map(|c| format!("if [ -f {from}/{c}.yaml ]; then mv {from}/{c}.yaml {to}/{c}.yaml; fi"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Moves the manifests aside (the pods stop).
pub fn park() -> String {
    format!("mkdir -p {PARKED} && {}", moves(MANIFESTS, PARKED))
}

/// Puts the parked manifests back (the pods start).
pub fn unpark() -> String {
    moves(PARKED, MANIFESTS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parking_and_bringing_back_move_the_same_three_manifests_each_way() {
        let (park, unpark) = (super::park(), super::unpark());
        for c in super::STATIC_PODS {
            assert!(park.contains(&format!(
                "mv /etc/kubernetes/manifests/{c}.yaml /etc/kubernetes/groundwork/parked/{c}.yaml"
            )));
            assert!(unpark.contains(&format!(
                "mv /etc/kubernetes/groundwork/parked/{c}.yaml /etc/kubernetes/manifests/{c}.yaml"
            )));
        }
    }
}
