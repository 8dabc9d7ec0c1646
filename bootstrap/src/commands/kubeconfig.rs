//! `groundwork kubeconfig --user NAME`: thin over `ops::users`.

use std::path::PathBuf;
use std::process::ExitCode;

use groundwork::ops::output::Body;
use groundwork::ops::users::{self, UserOptions, UserRole};

use super::connect_args::ConnectArgs;
use super::output::{OutputArg, print_json};

#[derive(Debug, clap::Args)]
pub struct KubeconfigArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The person: the certificate's common name and the RBAC user (`asha` or `asha@egov.org`).
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// A group the user belongs to (the certificate's organization), for bindings made elsewhere; repeatable.
    #[arg(long, value_name = "GROUP")]
    pub group: Vec<String>,
    /// What the user may do: view, edit, admin or cluster-admin (Kubernetes' built-in roles).
    #[arg(long, value_name = "ROLE", default_value = "view", value_parser = parse_role)]
    pub role: UserRole,
    /// Grant the role in this namespace only (a RoleBinding); cluster-wide without it.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// How long the certificate is valid.
    #[arg(long, value_name = "N", default_value_t = 365)]
    pub days: u32,
    /// Where to write the kubeconfig (default: the state directory's users/NAME.kubeconfig).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Delete the user's bindings instead (the certificate still authenticates until it expires).
    #[arg(long, conflicts_with_all = ["group", "namespace", "out"])]
    pub revoke: bool,
    /// Say what would be signed, bound and written; change nothing.
    #[arg(long, conflicts_with = "revoke")]
    pub plan: bool,
    #[command(flatten)]
    pub output: OutputArg,
}

fn parse_role(s: &str) -> Result<UserRole, String> {
    s.parse()
}

pub fn run(args: KubeconfigArgs) -> anyhow::Result<ExitCode> {
    let loaded = super::load_inventory(&args.connect.inventory)?;
    let transport = args.connect.facts_options(&loaded).transport;
    let runtime = super::runtime()?;
    if args.revoke {
        let report = runtime.block_on(users::revoke(&loaded, transport, &args.user))?;
        if args.output.json() {
            print_json("kubeconfig --revoke", Body::UserRevoked(report));
            return Ok(ExitCode::from(super::exit::OK));
        }
        if report.deleted.is_empty() {
            println!("{}: no binding of groundwork's found; nothing to revoke", report.user);
        }
        for b in &report.deleted {
            println!("{}: deleted {b}", report.user);
        }
        if let Some(k) = &report.removed_kubeconfig {
            println!("  removed {}", k.display());
        }
        if let Some(until) = report.certificate_valid_until {
            println!(
                "  the certificate still authenticates until {} but is authorized for nothing groundwork granted",
                super::table::utc(until)
            );
        }
        return Ok(ExitCode::from(super::exit::OK));
    }
    let opts = UserOptions {
        transport,
        name: args.user,
        groups: args.group,
        role: args.role,
        namespace: args.namespace,
        days: args.days,
        out: args.out,
    };
    if args.plan {
        return super::show_plan("kubeconfig", users::issue_plan(&loaded, &opts)?, args.output.json());
    }
    let report = runtime.block_on(users::issue(&loaded, opts))?;
    if args.output.json() {
        print_json("kubeconfig", Body::UserAccess(report));
        return Ok(ExitCode::from(super::exit::OK));
    }
    let i = &report.issued;
    println!("kubeconfig for {}: {} (mode 0600: it holds the user's private key)", i.user, report.kubeconfig.display());
    println!("  role {} through {}", i.role.cluster_role(), report.binding);
    if !i.groups.is_empty() {
        println!("  groups {}", i.groups.join(", "));
    }
    println!("  certificate serial {}, valid until {}", i.serial, super::table::utc(i.not_after));
    Ok(ExitCode::from(super::exit::OK))
}
