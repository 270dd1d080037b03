//! `ksysvmmgr [<FLAGS>] <ACTION> [<CLASS>] [<NAME>] [<ATTRIBUTES>]` (seed 000 §3.7) parsed
//! into a [`VmmCommand`]; every refusal is a `KSYSVMMGR-nnn(ERROR)`.
use crate::logic::app_engine::VmmError;
use crate::logic::app_engine::config::code;

pub const USAGE: &str = "Usage: ksysvmmgr [<FLAGS>] <ACTION> [<CLASS>] [<NAME>] [<ATTRIBUTES>]
  FLAGS:   -s (apply to the running daemon now), -a <attr>[,<attr>] (query filter), -h
  ACTION:  add, query (q), modify (mod), delete, status, resume, suspend, start, stop, help, sync
  CLASS:   vmm, app, dependency
  e.g.     ksysvmmgr -s add app app1 monitor_script=/apps/mon start_script=/apps/start stop_script=/apps/stop
           ksysvmmgr -a status q app app1
           ksysvmmgr -s add dependency dependency_list=app1,app2 dependency_type=start_sequence";

const ACTIONS: &str = "add,query,modify,delete,status,resume,suspend,start,stop,help,sync";

pub type Attrs = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmmCommand {
    Help,
    QueryVmm,
    QueryApp { name: Option<String>, only: Vec<String> },
    QueryDependency { depuuid: Option<String> },
    AddApp { name: String, attrs: Attrs },
    ModifyApp { name: String, attrs: Attrs },
    DeleteApp { name: String },
    ModifyVmm { attrs: Attrs },
    AddDependency { attrs: Attrs },
    DeleteDependency { depuuid: String },
    Status,
    StartVmm,
    StopVmm,
    StartApp { name: String },
    StopApp { name: String },
    Suspend { name: String },
    Resume { name: String },
    Sync,
}

/// A parsed command line: the command and the `-s` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub command: VmmCommand,
    pub sync: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Vmm,
    App,
    Dependency,
}

pub fn parse(words: &[String]) -> Result<Invocation, VmmError> {
    let mut sync = false;
    let mut only = Vec::new();
    let mut rest = Vec::new();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "-s" => sync = true,
            "-h" => return Ok(Invocation { command: VmmCommand::Help, sync }),
            "-a" => {
                let list = it.next().ok_or_else(|| VmmError::new(code::BAD_VALUE, "-a needs an attribute list."))?;
                only.extend(list.split(',').map(str::to_string));
            }
            flag if flag.starts_with('-') && rest.is_empty() => {
                return Err(VmmError::new(
                    code::UNKNOWN_ACTION,
                    format!("\"{flag}\" is not a valid flag (-s, -a, -h)."),
                ));
            }
            _ => rest.push(w.as_str()),
        }
    }
    let Some((&action, args)) = rest.split_first() else {
        return Err(VmmError::new(code::ACTION_MANDATORY, format!("<ACTION> parameter is mandatory.\n\"{ACTIONS}\"")));
    };
    let (class, args) = match args.first().map(|c| class_of(c)) {
        Some(Some(c)) => (Some(c), &args[1..]),
        _ => (None, args),
    };
    let (positional, attrs) = split_attrs(args)?;
    let name = positional.first().map(|s| s.to_string());
    if let (Some(_), Some(extra)) = (class, positional.get(1)) {
        return Err(VmmError::new(code::BAD_VALUE, format!("\"{extra}\" is not attribute=value.")));
    }
    if positional.len() > 1 || (name.is_some() && class.is_none()) {
        let word = positional.first().copied().unwrap_or_default();
        return Err(VmmError::new(
            code::UNKNOWN_CLASS,
            format!("\"{word}\" is not a valid class. Valid classes are: vmm,app,dependency"),
        ));
    }
    let need_name = |what: &str| {
        name.clone()
            .ok_or_else(|| VmmError::new(code::NAME_MANDATORY, format!("<NAME> parameter is mandatory for {what}.")))
    };
    let no_attrs = |cmd: VmmCommand| match attrs.is_empty() {
        true => Ok(cmd),
        false => Err(VmmError::new(code::UNKNOWN_ATTRIBUTE, format!("{action} takes no attributes."))),
    };
    use Class::*;
    let command = match (action, class) {
        ("help", _) => VmmCommand::Help,
        ("query" | "q", None | Some(Vmm)) => no_attrs(VmmCommand::QueryVmm)?,
        ("query" | "q", Some(App)) => no_attrs(VmmCommand::QueryApp { name, only })?,
        ("query" | "q", Some(Dependency)) => no_attrs(VmmCommand::QueryDependency { depuuid: name })?,
        ("add", Some(App)) => VmmCommand::AddApp { name: need_name("add app")?, attrs },
        ("add", Some(Dependency)) if name.is_none() => VmmCommand::AddDependency { attrs },
        ("modify" | "mod", None | Some(Vmm)) if name.is_none() => VmmCommand::ModifyVmm { attrs },
        ("modify" | "mod", Some(App)) => VmmCommand::ModifyApp { name: need_name("modify app")?, attrs },
        ("delete", Some(App)) => no_attrs(VmmCommand::DeleteApp { name: need_name("delete app")? })?,
        ("delete", Some(Dependency)) => {
            no_attrs(VmmCommand::DeleteDependency { depuuid: need_name("delete dependency")? })?
        }
        ("status", None | Some(Vmm)) => no_attrs(VmmCommand::Status)?,
        ("start", None | Some(Vmm)) => no_attrs(VmmCommand::StartVmm)?,
        ("stop", None | Some(Vmm)) => no_attrs(VmmCommand::StopVmm)?,
        ("start", Some(App)) => no_attrs(VmmCommand::StartApp { name: need_name("start app")? })?,
        ("stop", Some(App)) => no_attrs(VmmCommand::StopApp { name: need_name("stop app")? })?,
        ("suspend", Some(App)) => no_attrs(VmmCommand::Suspend { name: need_name("suspend app")? })?,
        ("resume", Some(App)) => no_attrs(VmmCommand::Resume { name: need_name("resume app")? })?,
        ("sync", None | Some(Vmm)) => no_attrs(VmmCommand::Sync)?,
        (a, _) if !ACTIONS.split(',').chain(["q", "mod"]).any(|x| x == a) => {
            return Err(VmmError::new(
                code::UNKNOWN_ACTION,
                format!("\"{a}\" is not a valid action. Valid actions are: {ACTIONS}"),
            ));
        }
        (a, c) => {
            let class = match c {
                None => "without a class".to_string(),
                Some(Vmm) => "on class vmm".into(),
                Some(App) => "on class app".into(),
                Some(Dependency) => "on class dependency".into(),
            };
            return Err(VmmError::new(code::UNKNOWN_CLASS, format!("action {a} is not valid {class}.")));
        }
    };
    Ok(Invocation { command, sync })
}

fn class_of(word: &str) -> Option<Class> {
    match word {
        "vmm" => Some(Class::Vmm),
        "app" => Some(Class::App),
        "dependency" | "dep" => Some(Class::Dependency),
        _ => None,
    }
}

fn split_attrs<'a>(args: &[&'a str]) -> Result<(Vec<&'a str>, Attrs), VmmError> {
    let mut positional = Vec::new();
    let mut attrs = Vec::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => attrs.push((k.to_string(), v.to_string())),
            Some(_) => return Err(VmmError::new(code::BAD_VALUE, format!("\"{a}\" is not attribute=value."))),
            None if attrs.is_empty() => positional.push(*a),
            None => return Err(VmmError::new(code::BAD_VALUE, format!("\"{a}\" is not attribute=value."))),
        }
    }
    Ok((positional, attrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Invocation, VmmError> {
        parse(&line.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    }

    fn code_of(line: &str) -> u16 {
        p(line).unwrap_err().code
    }

    #[test]
    fn the_seeds_commands_parse() {
        let add = p("-s add app app1 monitor_script=/m start_script=/s stop_script=/t").unwrap();
        assert!(add.sync);
        assert!(
            matches!(add.command, VmmCommand::AddApp { ref name, ref attrs } if name == "app1" && attrs.len() == 3)
        );
        assert_eq!(p("q").unwrap().command, VmmCommand::QueryVmm);
        assert_eq!(p("query vmm").unwrap().command, VmmCommand::QueryVmm);
        assert_eq!(
            p("-a status q app app1").unwrap().command,
            VmmCommand::QueryApp { name: Some("app1".into()), only: vec!["status".into()] }
        );
        assert_eq!(p("q app").unwrap().command, VmmCommand::QueryApp { name: None, only: vec![] });
        assert_eq!(
            p("mod app app1 monitor_period=5").unwrap().command,
            VmmCommand::ModifyApp { name: "app1".into(), attrs: vec![("monitor_period".into(), "5".into())] }
        );
        assert_eq!(
            p("modify log=3").unwrap().command,
            VmmCommand::ModifyVmm { attrs: vec![("log".into(), "3".into())] }
        );
        assert!(matches!(p("-s add dependency dependency_list=a,b dependency_type=parent_child").unwrap().command,
            VmmCommand::AddDependency { ref attrs } if attrs.len() == 2));
        assert_eq!(p("q dependency 154").unwrap().command, VmmCommand::QueryDependency { depuuid: Some("154".into()) });
        assert_eq!(p("status").unwrap().command, VmmCommand::Status);
        assert_eq!(p("stop vmm").unwrap().command, VmmCommand::StopVmm);
        assert_eq!(p("start app app1").unwrap().command, VmmCommand::StartApp { name: "app1".into() });
        assert_eq!(p("suspend app app1").unwrap().command, VmmCommand::Suspend { name: "app1".into() });
        assert_eq!(p("sync").unwrap().command, VmmCommand::Sync);
        assert_eq!(p("-h").unwrap().command, VmmCommand::Help);
    }

    #[test]
    fn bad_command_lines_get_the_seeds_errors() {
        let e = p("").unwrap_err();
        assert_eq!(e.code, code::ACTION_MANDATORY);
        assert!(e.to_string().starts_with("KSYSVMMGR-002(ERROR): <ACTION> parameter is mandatory."), "{e}");
        assert_eq!(code_of("-s"), code::ACTION_MANDATORY);
        assert_eq!(code_of("launch app app1"), code::UNKNOWN_ACTION);
        assert_eq!(code_of("add widget w1"), code::UNKNOWN_CLASS);
        assert_eq!(code_of("add vmm"), code::UNKNOWN_CLASS);
        assert_eq!(code_of("add app"), code::NAME_MANDATORY);
        assert_eq!(code_of("delete app"), code::NAME_MANDATORY);
        assert_eq!(code_of("add app a1 monitor_script"), code::BAD_VALUE);
        assert_eq!(code_of("status log=1"), code::UNKNOWN_ATTRIBUTE);
        assert_eq!(code_of("-x q"), code::UNKNOWN_ACTION);
        assert_eq!(code_of("q -a"), code::BAD_VALUE);
    }
}
