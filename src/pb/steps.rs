//! How a command's steps read: each step's line as `ksysmgr` prints it (a nested step under its
//! heading), for the CLI, the launcher and anyone who shows a reply to a person.
use crate::pb::{CommandReply, MigrateReply, RestartVmReply, Step, StepCode};

impl Step {
    /// The line ksysmgr prints: a nested step indented under its heading.
    pub fn printed(&self) -> String {
        match self.nested {
            true => format!("        {}", self.text),
            false => self.text.clone(),
        }
    }
}

/// The lines of `steps`, as ksysmgr prints them; a verification that follows a discovery begins
/// after a blank line, as in the seed's output.
pub fn printed(steps: &[Step]) -> Vec<String> {
    let mut lines = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        if i > 0 && step.code() == StepCode::VerificationStarted {
            lines.push(String::new());
        }
        lines.push(step.printed());
    }
    lines
}

macro_rules! printed_reply {
    ($($reply:ty),+) => {$(
        impl $reply {
            /// The reply's lines, as ksysmgr prints them.
            pub fn printed(&self) -> Vec<String> {
                printed(&self.steps)
            }
        }
    )+};
}

printed_reply!(CommandReply, RestartVmReply, MigrateReply);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_steps_print_indented() {
        let mut step = Step { text: "Discovery for VM vm-1 is complete".into(), ..Default::default() };
        assert_eq!(step.printed(), "Discovery for VM vm-1 is complete");
        step.nested = true;
        let verify =
            Step { code: StepCode::VerificationStarted as i32, text: "Host_group verification".into(), ..step.clone() };
        assert_eq!(
            CommandReply { steps: vec![step, verify] }.printed(),
            ["        Discovery for VM vm-1 is complete", "", "        Host_group verification"]
        );
    }
}
