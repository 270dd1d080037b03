//! `ksysvmmgr`: the in-VM agent's command line. The application management engine it drives
//! is not in this release yet, so every action is refused with a clear message and exit code.
const USAGE: &str = "Usage: ksysvmmgr [-s] {help|start|stop|status|add|modify|query|delete|sync|suspend|resume} [vmm|app|dependency] [NAME] [attribute=value ...]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {
            eprintln!("KSYSVMMGR-002(ERROR): <ACTION> parameter is mandatory.\n{USAGE}");
            std::process::exit(2);
        }
        Some("help" | "-h" | "--help") => println!("{USAGE}"),
        Some(action) => {
            eprintln!(
                "KSYSVMMGR-001(ERROR): action {action} is not available: the VM agent's application management engine is not part of this release."
            );
            std::process::exit(1);
        }
    }
}
