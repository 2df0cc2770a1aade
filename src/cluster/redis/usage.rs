//! The `Usage` seam on Redis: one script call per report (`lua/usage.lua`), on the app's slot.
//! Must not be called per message: nodes batch their counts (`usage/`).

use super::RedisCluster;
use crate::cluster::{ClusterError, Usage, UsageTotals};

/// How long a node's connection report counts towards the peak: a few report periods, so a
/// node that died stops counting soon.
const REPORT_WINDOW_MS: u64 = 5_000;
/// A day's usage is kept for three days (yesterday's stays readable).
const KEEP_MS: u64 = 3 * 86_400_000;

#[async_trait::async_trait]
impl Usage for RedisCluster {
    async fn record(
        &self,
        app_id: &str,
        day: u32,
        messages: u64,
        connections: u64,
    ) -> Result<UsageTotals, ClusterError> {
        let core = &self.core;
        let mut cmd = core.cmd.clone();
        let mut script = core.scripts.usage.key(core.keys.usage(app_id, day));
        script.arg(messages).arg(&core.node).arg(connections).arg(REPORT_WINDOW_MS).arg(KEEP_MS);
        let (messages, peak_connections): (u64, u64) =
            script.invoke_async(&mut cmd).await.map_err(|e| core.unavailable(&e))?;
        Ok(UsageTotals { messages, peak_connections })
    }
}
