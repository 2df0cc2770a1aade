//! `Queries` on Redis: counts from the channels' own keys, the list of occupied channels from
//! the node records (every live or not yet reaped node lists the channels it has subscribers on).
//! Must not change anything.

use std::collections::BTreeSet;

use redis::RedisResult;

use super::RedisCluster;
use crate::cluster::{ChannelStats, ClusterError, Queries};
use crate::metrics::ClusterOp;

impl RedisCluster {
    fn failed(&self, e: &redis::RedisError) -> ClusterError {
        self.core.metrics.failed(ClusterOp::State);
        self.core.unavailable(e)
    }

    /// The counts of each of `channels` (of `app`), `None` for an unoccupied one.
    async fn stats(&self, app: &str, channels: &[String]) -> Result<Vec<Option<ChannelStats>>, ClusterError> {
        let mut out = Vec::with_capacity(channels.len());
        // One channel's two keys share a slot; a pipeline over several channels may only be
        // sent to one server, not to a Redis Cluster.
        let per_pipeline = if self.core.settings.cluster { 1 } else { 128 };
        for chunk in channels.chunks(per_pipeline) {
            let mut pipe = redis::pipe();
            for name in chunk {
                let keys = self.core.keys.channel(app, name);
                pipe.cmd("HVALS").arg(&keys.nodes).cmd("HLEN").arg(&keys.users);
            }
            let counts: RedisResult<Vec<(Vec<i64>, i64)>> = pipe.query_async(&mut self.core.cmd.clone()).await;
            let counts = counts.map_err(|e| self.failed(&e))?;
            for (name, (nodes, users)) in chunk.iter().zip(counts) {
                let subscription_count: i64 = nodes.iter().sum();
                out.push((subscription_count > 0).then(|| ChannelStats {
                    name: name.clone(),
                    subscription_count: usize::try_from(subscription_count).unwrap_or(0),
                    user_count: usize::try_from(users).unwrap_or(0),
                }));
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Queries for RedisCluster {
    async fn channels(&self, app_id: &str, prefix: &str) -> Result<Vec<ChannelStats>, ClusterError> {
        let core = &self.core;
        let mut cmd = core.cmd.clone();
        let live: Vec<String> = redis::cmd("ZRANGE")
            .arg(core.keys.nodes())
            .arg(0)
            .arg(-1)
            .query_async(&mut cmd)
            .await
            .map_err(|e| self.failed(&e))?;
        let reaping: Vec<String> = redis::cmd("ZRANGE")
            .arg(core.keys.reaping())
            .arg(0)
            .arg(-1)
            .query_async(&mut cmd)
            .await
            .map_err(|e| self.failed(&e))?;
        let mut names = BTreeSet::new();
        let wanted = format!("{app_id}\n{prefix}");
        for node in live.iter().chain(&reaping) {
            let members: Vec<String> = redis::cmd("SMEMBERS")
                .arg(core.keys.node(node).channels)
                .query_async(&mut cmd)
                .await
                .map_err(|e| self.failed(&e))?;
            names.extend(
                members.into_iter().filter(|m| m.starts_with(&wanted)).map(|m| m[app_id.len() + 1..].to_owned()),
            );
        }
        let names: Vec<String> = names.into_iter().collect();
        Ok(self.stats(app_id, &names).await?.into_iter().flatten().collect())
    }

    async fn channel(&self, app_id: &str, channel: &str) -> Result<Option<ChannelStats>, ClusterError> {
        Ok(self.stats(app_id, &[channel.to_owned()]).await?.pop().flatten())
    }

    async fn presence_users(&self, app_id: &str, channel: &str) -> Result<Vec<String>, ClusterError> {
        let key = self.core.keys.channel(app_id, channel).users;
        let r: RedisResult<Vec<String>> = redis::cmd("HKEYS").arg(key).query_async(&mut self.core.cmd.clone()).await;
        let mut ids = r.map_err(|e| self.failed(&e))?;
        ids.sort();
        Ok(ids)
    }

    async fn online_users(&self, app_id: &str, user_ids: &[String]) -> Result<Vec<String>, ClusterError> {
        let mut online = Vec::new();
        for id in user_ids {
            let key = self.core.keys.user(app_id, id).nodes;
            let r: RedisResult<bool> = redis::cmd("EXISTS").arg(key).query_async(&mut self.core.cmd.clone()).await;
            if r.map_err(|e| self.failed(&e))? {
                online.push(id.clone());
            }
        }
        Ok(online)
    }
}
