//! A sink that counts data changes and drops them: what the source and the runtime cost
//! alone, without a target.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use cdc_api::{
    ConfigOption, Event, FactoryContext, Result, SchemaApplier, SchemaChangeEvent,
    SchemaChangeKind, Sink, SinkFactory, SinkParts,
};

/// `type: count`: every sink it creates adds its data changes to one shared counter.
pub(crate) struct CountingSinkFactory(pub(crate) Arc<AtomicU64>);

impl SinkFactory for CountingSinkFactory {
    fn identifier(&self) -> &'static str {
        "count"
    }
    fn options(&self) -> Vec<ConfigOption> {
        Vec::new()
    }
    fn create(&self, _ctx: &FactoryContext) -> Result<SinkParts> {
        Ok(SinkParts {
            sink: Box::new(CountingSink(self.0.clone())),
            applier: Box::new(AcceptAll),
        })
    }
}

struct CountingSink(Arc<AtomicU64>);

#[async_trait]
impl Sink for CountingSink {
    async fn write(&mut self, events: Vec<Event>) -> Result<()> {
        let n = events
            .iter()
            .filter(|e| matches!(e, Event::DataChange(_)))
            .count();
        self.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }
    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

struct AcceptAll;

#[async_trait]
impl SchemaApplier for AcceptAll {
    fn supported_kinds(&self) -> Vec<SchemaChangeKind> {
        SchemaChangeKind::ALL.to_vec()
    }
    async fn apply(&mut self, _: &SchemaChangeEvent) -> Result<()> {
        Ok(())
    }
}
