//! `groundwork certs check -i INV`: thin over `ops::certs`.

use std::process::ExitCode;

use groundwork::ops::certs::{self, CheckOptions, Health};
use groundwork::ops::output::Body;

use super::connect_args::ConnectArgs;
use super::output::{OutputArg, print_json};
use super::table::{Table, utc};

#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    pub action: CertsAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum CertsAction {
    /// Every certificate on every master and worker (kubeadm's, the kubelets', etcd's) and in the
    /// state's PKI: subject, expiry, days left. Exit 1 when one fails (expired, or fewer than
    /// --fail-days left) or a node cannot be reached; warnings alone exit 0. Changes nothing.
    Check {
        #[command(flatten)]
        connect: ConnectArgs,
        /// Warn below this many days left.
        #[arg(long, value_name = "DAYS", default_value_t = 30)]
        warn_days: i64,
        /// Fail below this many days left.
        #[arg(long, value_name = "DAYS", default_value_t = 7)]
        fail_days: i64,
        #[command(flatten)]
        output: OutputArg,
        /// Show every certificate (by default: those that warn or fail, and a line per host).
        #[arg(long)]
        all: bool,
    },
    /// Renew every certificate but the CAs: groundwork's own in the state (the old ones kept
    /// beside it) and on the masters, kubeadm's with `kubeadm certs renew all`; one master at a
    /// time, its etcd member and control plane restarted and healthy before the next.
    Renew {
        #[command(flatten)]
        connect: ConnectArgs,
        /// Say what would be renewed and restarted, master by master; change nothing.
        #[arg(long)]
        plan: bool,
        #[command(flatten)]
        output: OutputArg,
    },
}

pub fn run(args: CertsArgs) -> anyhow::Result<ExitCode> {
    let (connect, warn_days, fail_days, json, all) = match args.action {
        CertsAction::Check { connect, warn_days, fail_days, output, all } => {
            (connect, warn_days, fail_days, output.json(), all)
        }
        CertsAction::Renew { connect, plan: true, output } => {
            return super::print_plan(&connect, output.json(), "certs renew", |l, t| {
                Box::pin(async move { Ok(certs::renew_plan(l, t).await?) })
            });
        }
        CertsAction::Renew { connect, plan: false, output } => return renew(connect, output.json()),
    };
    let loaded = super::load_inventory(&connect.inventory)?;
    let opts = CheckOptions { transport: connect.facts_options(&loaded).transport, warn_days, fail_days };
    let report = super::runtime()?.block_on(certs::check(&loaded, opts))?;
    let worst = report.worst();
    if json {
        print_json("certs check", Body::Certificates(report));
    } else {
        let mut t = Table::new(["HOST", "CERTIFICATE", "SUBJECT", "EXPIRES", "DAYS", "STATUS"]);
        for c in report.certificates.iter().filter(|c| all || c.health != Health::Ok) {
            let status = match (c.health, &c.problem) {
                (_, Some(p)) => format!("FAIL ({p})"),
                (Health::Ok, None) => "ok".into(),
                (Health::Warn, None) => "WARN".into(),
                (Health::Fail, None) => "FAIL".into(),
            };
            let subject = if c.is_ca { format!("{} (CA)", c.subject) } else { c.subject.clone() };
            t.row([c.host.clone(), c.path.clone(), subject, utc(c.not_after), c.days_left.to_string(), status]);
        }
        if report.certificates.iter().any(|c| all || c.health != Health::Ok) {
            print!("{}", t.render());
        }
        for (host, (count, soonest)) in certs::soonest_by_host(&report) {
            println!("{host}: {count} certificate(s), the soonest expires in {soonest} day(s)");
        }
        for (host, why) in &report.unreachable {
            println!("{host}: NOT CHECKED ({why})");
        }
        let verdict = match worst {
            Health::Ok => format!("every certificate has at least {warn_days} days left"),
            Health::Warn => format!("some expire within {warn_days} days: plan a renewal"),
            Health::Fail => "FAILED: expired or due within the failure threshold, or not every node checked".into(),
        };
        println!("certs check: {verdict}");
    }
    Ok(ExitCode::from(if worst == Health::Fail { super::exit::FAILED } else { super::exit::OK }))
}

fn renew(connect: ConnectArgs, json: bool) -> anyhow::Result<ExitCode> {
    let loaded = super::load_inventory(&connect.inventory)?;
    let transport = connect.facts_options(&loaded).transport;
    let say = |line: &str| eprintln!("  {line}");
    let report = super::runtime()?.block_on(certs::renew(&loaded, transport, &say))?;
    if json {
        print_json("certs renew", Body::CertificateRenewal(report));
        return Ok(ExitCode::from(super::exit::OK));
    }
    println!(
        "certificates renewed ({:.1} s); the previous ones of the state are kept in {}",
        report.took_ms as f64 / 1000.0,
        report.previous_kept_in.display()
    );
    for made in &report.renewed_in_state {
        println!("  state: {made}");
    }
    for (host, steps) in &report.masters {
        println!("  {host}: {}", steps.join("; "));
    }
    println!("  `groundwork certs check -i {}` shows the new expiries", connect.inventory.display());
    Ok(ExitCode::from(super::exit::OK))
}
