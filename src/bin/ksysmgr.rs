//! `ksysmgr`: the administrator's command line (seed syntax). Thin: parse, call, print.
use clap::Parser;
use vmrm::cli::{self, run::Output};
use vmrm::launcher::Topology;
use vmrm::transport::AdminClient;

#[derive(Parser)]
#[command(name = "ksysmgr", about = "Administer a vmrm cluster", override_usage = cli::grammar::USAGE)]
struct Args {
    /// Controller endpoints (all of them; the active one is found automatically).
    #[arg(long, env = "KSYSMGR_ENDPOINTS", value_delimiter = ',')]
    endpoints: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
    /// Queries: let any controller answer from its own copy of the HSDB (works without the
    /// DBN or a quorum; may lag the latest changes).
    #[arg(long)]
    follower_read: bool,
    /// Answer yes to every question (remove ksyscluster: take the snapshot, and go on).
    #[arg(short = 'y', long)]
    yes: bool,
    #[command(flatten)]
    identity: cli::Identity,
    /// <action> <class> [name] [attribute=value ...]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    words: Vec<String>,
}

fn main() {
    let args = Args::parse();
    let cmd = match cli::parse(&args.words) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ERROR: {e}\n{}", cli::grammar::USAGE);
            std::process::exit(2);
        }
    };
    let endpoints = match args.endpoints.is_empty() {
        true => Topology::local(Default::default()).controller_endpoints(),
        false => args.endpoints,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(async {
        let mut admin = AdminClient::new(endpoints, args.identity.security()?)?;
        cli::run::execute(&mut admin, cmd, args.output, args.follower_read, args.yes).await
    });
    match result {
        Ok(text) => print!("{text}"),
        Err(e) => {
            eprintln!("ERROR: {e}");
            std::process::exit(1);
        }
    }
}
