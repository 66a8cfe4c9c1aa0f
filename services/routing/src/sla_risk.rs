//! The "at risk" queue from sla-timer's events: a clock's warning or breach
//! marks its ticket at risk, the clock met clears it. Consumed without
//! gating readiness: routing works without sla-timer, the queue is then
//! empty.

use kesu_bus::{Delivery, HandleError, Handler, UnitOfWork};
use kesu_domain::time::to_millis;
use kesu_proto::type_names;
use kesu_proto::v1::{SlaClock, SlaEvent, sla_event};

pub struct SlaEvents {
    pub clock: std::sync::Arc<dyn kesu_domain::Clock>,
}

fn clock_name(c: Option<&SlaClock>) -> String {
    let kind = c.map(|c| c.kind).unwrap_or_default();
    kesu_proto::v1::SlaClockKind::try_from(kind)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("SLA_CLOCK_KIND_")
        .to_lowercase()
}

impl Handler for SlaEvents {
    async fn handle(&self, work: &mut UnitOfWork, d: &Delivery) -> Result<(), HandleError> {
        let event: SlaEvent = d.decode(type_names::SLA_EVENT)?;
        if event.ticket_id.is_empty() {
            return Ok(());
        }
        let (clock, state) = match &event.kind {
            Some(sla_event::Kind::Warning(w)) => (clock_name(w.clock.as_ref()), "warning"),
            Some(sla_event::Kind::Breached(b)) => (clock_name(b.clock.as_ref()), "breached"),
            Some(sla_event::Kind::Escalated(e)) => (clock_name(e.clock.as_ref()), "breached"),
            Some(sla_event::Kind::Met(m)) => {
                sqlx::query("DELETE FROM ticket_sla_risk WHERE ticket_id = $1 AND clock = $2")
                    .bind(&event.ticket_id)
                    .bind(clock_name(m.clock.as_ref()))
                    .execute(work.conn())
                    .await?;
                return Ok(());
            }
            _ => return Ok(()),
        };
        sqlx::query(
            "INSERT INTO ticket_sla_risk (ticket_id, clock, state, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (ticket_id, clock) DO UPDATE SET state = excluded.state, at = excluded.at",
        )
        .bind(&event.ticket_id)
        .bind(clock)
        .bind(state)
        .bind(to_millis(self.clock.now()))
        .execute(work.conn())
        .await?;
        Ok(())
    }
}
