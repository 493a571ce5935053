//! A business tool running for the call while the call keeps listening,
//! and its record once it answered, failed, or was left by the call's end.

use crate::dialogue::ToolOutcome;
use crate::tools::ToolCall;
use crate::Agent;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use voxline_store::ToolUse;

/// A tool call under way.
pub(super) struct RunningTool {
    task: JoinHandle<ToolOutcome>,
    tool: String,
    /// Its arguments as they may be recorded (secret digits masked).
    args: BTreeMap<String, String>,
    started: Instant,
    /// When it was called, ms of call audio.
    at_ms: i64,
}

impl RunningTool {
    /// Starts `call` on its own task, called at `at_ms` of call audio.
    pub fn start(agent: Arc<Agent>, call: ToolCall, at_ms: i64) -> RunningTool {
        let args = agent.recordable_args(&call);
        let tool = call.tool.clone();
        RunningTool {
            task: tokio::spawn(async move { agent.run_tool(call).await }),
            tool,
            args,
            started: Instant::now(),
            at_ms,
        }
    }

    /// Its outcome, when it comes (none if its task died).
    pub async fn done(&mut self) -> Option<ToolOutcome> {
        (&mut self.task).await.ok()
    }

    /// Stops it (the call ended first).
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Its record, number `seq` of the call: `error` why it failed;
    /// `answered` whether it came back at all (its time is then known).
    pub fn record(&self, seq: i64, error: Option<String>, answered: bool) -> ToolUse {
        ToolUse {
            seq,
            tool: self.tool.clone(),
            args: self.args.clone(),
            ok: error.is_none(),
            error,
            at_ms: self.at_ms,
            took_ms: answered.then(|| self.started.elapsed().as_millis() as i64),
        }
    }
}
