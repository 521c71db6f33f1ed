//! Interrupt delivery: the [`InterruptSink`] a function signals through, the messages it sends and
//! what became of a request.
//!
//! A function has three mutually exclusive ways to interrupt (PCI Local Bus Spec 3.0, 6.8: "While
//! enabled for MSI or MSI-X operation, a function is prohibited from using its INTx# pin (if
//! implemented) to request service (MSI, MSI-X, and INTx# are mutually exclusive)."):
//!
//! * **INTx**, a level: the sink sees [`InterruptSink::intx`] with the new level on every change;
//! * **MSI** and **MSI-X**, messages: memory writes of `data` to `address`, which the sink receives
//!   as [`MsiMessage`]s (a VFIO layer signals the vector's eventfd; an interrupt remapper would
//!   translate the address/data).

/// Where a function's interrupts go. Set with [`PciFunction::set_sink`](crate::PciFunction::set_sink).
///
/// Calls are made without the function's state lock held and in the order the function decided
/// them (a delivery lock serializes them), so a sink may read the function's config space, and
/// may even call back into the function from the same thread. It should not block on another
/// thread that is itself calling into the same function.
pub trait InterruptSink: Send + Sync {
    /// The INTx line changed to `asserted`.
    fn intx(&self, asserted: bool);
    /// An MSI or MSI-X message was sent.
    fn msi(&self, message: MsiMessage);
}

/// Which mechanism sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// MSI (`PCI_CAP_ID_MSI`).
    Msi,
    /// MSI-X (`PCI_CAP_ID_MSIX`).
    MsiX,
}

/// One interrupt message: the memory write the function performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsiMessage {
    /// MSI or MSI-X.
    pub kind: MessageKind,
    /// The vector the device signalled (MSI: 0..enabled count; MSI-X: the table entry).
    pub vector: u16,
    /// The message address.
    pub address: u64,
    /// The message data (for multi-vector MSI, with the vector in its low bits).
    pub data: u32,
}

/// Why a message could not be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blocked {
    /// MSI / MSI-X is not enabled.
    Disabled,
    /// The vector is beyond MSI's Multiple Message Enable count.
    VectorNotEnabled,
    /// The vector's mask bit is set.
    Masked,
    /// MSI-X's Function Mask (`PCI_MSIX_FLAGS_MASKALL`) is set.
    FunctionMasked,
    /// `PCI_COMMAND_MASTER` is 0. PCI Express Base Spec, Command register, Bus Master Enable:
    /// "Since MSI/MSI-X interrupt Messages are in-band memory writes, setting the Bus Master
    /// Enable bit to 0b disables MSI/MSI-X interrupt Messages as well."
    BusMasterDisabled,
    /// The function is not in D0.
    LowPower,
}

/// What became of an MSI / MSI-X request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageOutcome {
    /// The message went to the sink.
    Sent,
    /// The pending bit was set; the message goes out when the block lifts.
    Pending(Blocked),
    /// The request was dropped (no pending bit can hold it).
    Dropped(Blocked),
}

/// An interrupt request the function cannot make at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InterruptError {
    /// The function has no interrupt pin (`PCI_INTERRUPT_PIN` is 0).
    #[error("the function has no INTx pin")]
    NoIntx,
    /// The function has no MSI capability.
    #[error("the function has no MSI capability")]
    NoMsi,
    /// The function has no MSI-X capability.
    #[error("the function has no MSI-X capability")]
    NoMsix,
    /// The vector is beyond what the capability provides.
    #[error("vector {vector} is beyond the {count} vectors of the capability")]
    NoSuchVector {
        /// The vector asked for.
        vector: u16,
        /// How many vectors exist (MSI: Multiple Message Capable; MSI-X: table size).
        count: u16,
    },
}

/// What the function decided to tell the sink, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The INTx line changed.
    Intx(bool),
    /// A message was sent.
    Message(MsiMessage),
}

impl Event {
    pub(crate) fn deliver(self, sink: &dyn InterruptSink) {
        match self {
            Event::Intx(level) => sink.intx(level),
            Event::Message(message) => sink.msi(message),
        }
    }
}
