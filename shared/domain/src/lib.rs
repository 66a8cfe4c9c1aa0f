//! Domain types every kesu service shares.
//!
//! Values that come from outside are parsed into types that can only hold
//! valid values (contacts, feedback numbers, priorities); personal data types
//! print masked in `Debug`. Every number or list of the domain is policy
//! (`policy` module) with a shipped default, never a constant in code.

pub mod calendar;
pub mod channel;
pub mod clock;
pub mod contact;
pub mod events;
pub mod mask;
pub mod number;
pub mod policy;
pub mod priority;
pub mod seal;
pub mod target;
pub mod time;

pub use calendar::BusinessCalendar;
pub use channel::{channel_from_token, channel_token};
pub use clock::{Clock, ManualClock, SystemClock};
pub use contact::{ContactValue, EmailAddress, PhoneNumber};
pub use number::FeedbackNumber;
pub use policy::Policy;
pub use priority::Priority;
pub use seal::ContactKey;
pub use target::SlaTarget;
