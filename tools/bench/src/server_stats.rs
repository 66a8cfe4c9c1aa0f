//! What the services asked of the broker, counted by the broker: messages
//! stored in the services' streams (publishes) and deliveries to the
//! services' durable consumers (consumes, redeliveries included), read
//! through the JetStream API. The bench's own `BENCH` stream is left out.

use async_nats::jetstream;
use futures::TryStreamExt;

use crate::raw;

/// Totals at one moment; subtract two to get a phase's work.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub publishes: u64,
    pub consumes: u64,
}

impl Counts {
    pub async fn read(js: &jetstream::Context) -> anyhow::Result<Self> {
        let mut counts = Self::default();
        let streams: Vec<jetstream::stream::Info> = js.streams().try_collect().await?;
        for info in streams.iter().filter(|s| s.config.name != raw::STREAM) {
            counts.publishes += info.state.last_sequence;
            let stream = js.get_stream(&info.config.name).await?;
            let consumers: Vec<jetstream::consumer::Info> = stream.consumers().try_collect().await?;
            counts.consumes += consumers.iter().map(|c| c.delivered.consumer_sequence).sum::<u64>();
        }
        Ok(counts)
    }

    pub fn since(self, earlier: Self) -> Self {
        Self { publishes: self.publishes - earlier.publishes, consumes: self.consumes - earlier.consumes }
    }
}
