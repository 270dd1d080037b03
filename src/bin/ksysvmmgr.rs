//! `ksysvmmgr`: the in-VM agent's command line. Inside a VM (its application scripts) the VM is
//! found through `KSYS_VMM_ROOT`; from the machine running the datacenter, name it with
//! `--vm NAME` (guest directories under `--guests`, default the local datacenter's).
use vmrm::agents::vm_agent::guest::{GUEST_ENV, GuestDir, default_guests_root};
use vmrm::cli::vmm::{grammar, run};

fn main() {
    let mut words: Vec<String> = std::env::args().skip(1).collect();
    let guest = guest_dir(&mut words);
    let invocation = match grammar::parse(&words) {
        Ok(i) => i,
        Err(e) => fail(&format!("{e}\n{}", grammar::USAGE)),
    };
    let guest = match guest {
        Ok(g) => g,
        Err(e) => fail(&e),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run::execute(&guest, invocation)) {
        Ok(text) => print!("{text}"),
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(1);
}

/// Takes `--vm NAME`, `--guests DIR` and `--guest DIR` out of `words`.
fn guest_dir(words: &mut Vec<String>) -> Result<GuestDir, String> {
    let mut take = |flag: &str| -> Result<Option<String>, String> {
        let Some(at) = words.iter().position(|w| w == flag) else { return Ok(None) };
        let value = words.get(at + 1).cloned().ok_or(format!("{flag} needs a value"))?;
        words.drain(at..=at + 1);
        Ok(Some(value))
    };
    let (vm, guests, guest) = (take("--vm")?, take("--guests")?, take("--guest")?);
    let guests = guests.map(std::path::PathBuf::from).unwrap_or_else(default_guests_root);
    match (vm, guest.or_else(|| std::env::var(GUEST_ENV).ok())) {
        (Some(vm), _) => GuestDir::of(&guests, &vm).map_err(|e| e.to_string()),
        (None, Some(root)) => Ok(GuestDir::new(root)),
        (None, None) => Err(format!(
            "which VM? run it inside the VM ({GUEST_ENV} set), or name it: ksysvmmgr --vm NAME [--guests DIR] <ACTION> ..."
        )),
    }
}
