//! The object table: every iommufd object has an id, a type and a count of long-term users.
//!
//! Modelled on Linux `drivers/iommu/iommufd/main.c`: an id is *reserved* while its object is built
//! (invisible to lookups, like the kernel's `XA_ZERO_ENTRY`), then *finalized* or *aborted*; ids are
//! the lowest free number from 1, as `xa_alloc` hands them out. An object that other objects depend
//! on (an IOAS with a HWPT, a HWPT with an attached device) has long-term users and cannot be
//! destroyed: `IOMMU_DESTROY` fails with `EBUSY`. Closing the file destroys everything in dependency
//! order: objects without users first, which releases their own references, until the table is
//! empty.

use crate::fail::{FailPoints, Site};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The largest id: Linux allocates ids in `xa_limit_31b`.
pub const MAX_OBJECT_ID: u32 = i32::MAX as u32;

/// An object id as the uAPI carries it (`__u32`, never 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(NonZeroU32);

impl ObjectId {
    /// The id `raw`, if it is not 0.
    pub fn new(raw: u32) -> Option<Self> {
        NonZeroU32::new(raw).map(ObjectId)
    }

    /// The number the uAPI carries.
    pub fn raw(self) -> u32 {
        self.0.get()
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The kinds of iommufd objects (`enum iommufd_object_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// An I/O address space.
    Ioas,
    /// A paging HW page table (a domain).
    HwptPaging,
    /// A nested HW page table.
    HwptNested,
    /// A bound device.
    Device,
    /// An access (an emulated device's view of an IOAS).
    Access,
    /// A fault queue.
    Fault,
    /// The selftest's mock objects.
    Selftest,
}

/// What the table stores: a cheap-to-clone handle (an enum of `Arc`s) that knows its type.
pub trait TableObject: Clone {
    /// The object's type.
    fn object_type(&self) -> ObjectType;
}

/// Errors of the object table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// No object of that id (or it is still being built).
    #[error("no object {0}")]
    NotFound(u32),
    /// The object is of another type than the call needs (Linux answers `ENOENT` too).
    #[error("object {id} is a {actual:?}, not a {expected:?}")]
    WrongType {
        /// The id.
        id: u32,
        /// What the call needs.
        expected: ObjectType,
        /// What it is.
        actual: ObjectType,
    },
    /// Other objects still use it.
    #[error("object {id} has {users} users")]
    Busy {
        /// The id.
        id: u32,
        /// Its long-term users.
        users: u32,
    },
    /// Every id is taken.
    #[error("no free object id")]
    NoIds,
    /// A fault-injection point failed this step.
    #[error("injected failure at {0:?}")]
    Injected(Site),
}

impl ObjectError {
    /// The errno Linux returns for the same failure.
    pub fn errno(&self) -> rustix::io::Errno {
        use rustix::io::Errno;
        match self {
            ObjectError::NotFound(_) | ObjectError::WrongType { .. } => Errno::NOENT,
            ObjectError::Busy { .. } => Errno::BUSY,
            ObjectError::NoIds => Errno::NOSPC,
            ObjectError::Injected(_) => Errno::NOMEM,
        }
    }
}

/// The part of an entry that user references point at.
#[derive(Debug)]
struct Header {
    users: AtomicU32,
}

/// A long-term reference of one object on another (a HWPT on its IOAS, a device on its HWPT).
/// While it lives, the referenced object cannot be destroyed; dropping it releases the use.
#[derive(Debug)]
pub struct UserRef {
    header: Arc<Header>,
    id: ObjectId,
}

impl UserRef {
    /// The object this reference holds.
    pub fn id(&self) -> ObjectId {
        self.id
    }
}

impl Drop for UserRef {
    fn drop(&mut self) {
        self.header.users.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
enum Slot<O> {
    Reserved(ObjectType),
    Live { obj: O, header: Arc<Header> },
}

/// The object table of one iommufd context.
#[derive(Debug)]
pub struct ObjectTable<O> {
    slots: Mutex<BTreeMap<u32, Slot<O>>>,
    fail: Arc<FailPoints>,
}

/// An id reserved for an object being built. [`finalize`](Self::finalize) publishes the object;
/// dropping the reservation aborts it and frees the id.
#[derive(Debug)]
pub struct Reservation<'t, O: TableObject> {
    table: &'t ObjectTable<O>,
    id: ObjectId,
    done: bool,
}

impl<O: TableObject> Reservation<'_, O> {
    /// The id the object will have.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// Publishes `obj` under the reserved id.
    pub fn finalize(mut self, obj: O) {
        let header = Arc::new(Header {
            users: AtomicU32::new(0),
        });
        self.table
            .slots
            .lock()
            .insert(self.id.raw(), Slot::Live { obj, header });
        self.done = true;
    }
}

impl<O: TableObject> Drop for Reservation<'_, O> {
    fn drop(&mut self) {
        if !self.done {
            self.table.slots.lock().remove(&self.id.raw());
        }
    }
}

impl<O: TableObject> ObjectTable<O> {
    /// An empty table whose fallible steps consult `fail`.
    pub fn new(fail: Arc<FailPoints>) -> Self {
        ObjectTable {
            slots: Mutex::new(BTreeMap::new()),
            fail,
        }
    }

    /// Reserves the lowest free id for an object of type `ty` being built.
    pub fn reserve(&self, ty: ObjectType) -> Result<Reservation<'_, O>, ObjectError> {
        self.fail.step(Site::ObjectAlloc).map_err(ObjectError::Injected)?;
        let mut slots = self.slots.lock();
        let mut candidate = 1u32;
        for &used in slots.keys() {
            if used != candidate {
                break;
            }
            candidate = candidate.checked_add(1).ok_or(ObjectError::NoIds)?;
        }
        let id = ObjectId::new(candidate)
            .filter(|_| candidate <= MAX_OBJECT_ID)
            .ok_or(ObjectError::NoIds)?;
        slots.insert(candidate, Slot::Reserved(ty));
        Ok(Reservation {
            table: self,
            id,
            done: false,
        })
    }

    fn live(
        slots: &BTreeMap<u32, Slot<O>>,
        id: u32,
        ty: Option<ObjectType>,
    ) -> Result<(&O, &Arc<Header>), ObjectError> {
        match slots.get(&id) {
            Some(Slot::Live { obj, header }) => match ty {
                Some(expected) if obj.object_type() != expected => Err(ObjectError::WrongType {
                    id,
                    expected,
                    actual: obj.object_type(),
                }),
                _ => Ok((obj, header)),
            },
            _ => Err(ObjectError::NotFound(id)),
        }
    }

    /// The object `id`, which must be of type `ty` (`None`: any type).
    pub fn get(&self, id: u32, ty: Option<ObjectType>) -> Result<O, ObjectError> {
        Self::live(&self.slots.lock(), id, ty).map(|(obj, _)| obj.clone())
    }

    /// The object `id` of type `ty`, with a long-term reference on it taken in the same step.
    pub fn get_with_user(&self, id: u32, ty: ObjectType) -> Result<(O, UserRef), ObjectError> {
        let slots = self.slots.lock();
        let (obj, header) = Self::live(&slots, id, Some(ty))?;
        header.users.fetch_add(1, Ordering::AcqRel);
        let user = UserRef {
            header: Arc::clone(header),
            id: ObjectId::new(id).ok_or(ObjectError::NotFound(id))?,
        };
        Ok((obj.clone(), user))
    }

    /// Long-term users of `id`.
    pub fn users(&self, id: u32) -> Result<u32, ObjectError> {
        Self::live(&self.slots.lock(), id, None).map(|(_, h)| h.users.load(Ordering::Acquire))
    }

    /// `IOMMU_DESTROY`: removes `id` unless other objects use it. Returns the removed object; it
    /// is torn down when the caller (and any call still holding a clone) drops it.
    pub fn destroy(&self, id: u32) -> Result<O, ObjectError> {
        let mut slots = self.slots.lock();
        let (_, header) = Self::live(&slots, id, None)?;
        let users = header.users.load(Ordering::Acquire);
        if users > 0 {
            return Err(ObjectError::Busy { id, users });
        }
        match slots.remove(&id) {
            Some(Slot::Live { obj, .. }) => Ok(obj),
            _ => Err(ObjectError::NotFound(id)),
        }
    }

    /// Destroys every object, those without users first, dropping each before the next pass (so
    /// the references it held are released), as closing `/dev/iommu` does. Returns the objects that
    /// could not be destroyed because something outside the table still holds a reference on them
    /// (a leak, which tests assert never happens).
    pub fn destroy_all(&self) -> Vec<(ObjectId, ObjectType)> {
        loop {
            let free: Vec<u32> = self
                .slots
                .lock()
                .iter()
                .filter_map(|(&id, slot)| match slot {
                    Slot::Live { header, .. } if header.users.load(Ordering::Acquire) == 0 => Some(id),
                    _ => None,
                })
                .collect();
            if free.is_empty() {
                break;
            }
            for id in free {
                // Dropped outside the lock: tearing an object down may release users of others.
                let removed = self.destroy(id);
                drop(removed);
            }
        }
        self.snapshot()
    }

    /// Every live object, in id order.
    pub fn snapshot(&self) -> Vec<(ObjectId, ObjectType)> {
        self.slots
            .lock()
            .iter()
            .filter_map(|(&id, slot)| match slot {
                Slot::Live { obj, .. } => ObjectId::new(id).map(|id| (id, obj.object_type())),
                Slot::Reserved(_) => None,
            })
            .collect()
    }

    /// Ids reserved for objects still being built (none, once every operation has returned).
    pub fn reserved(&self) -> Vec<(ObjectId, ObjectType)> {
        self.slots
            .lock()
            .iter()
            .filter_map(|(&id, slot)| match slot {
                Slot::Reserved(ty) => ObjectId::new(id).map(|id| (id, *ty)),
                Slot::Live { .. } => None,
            })
            .collect()
    }

    /// Number of ids in use, reserved ones included.
    pub fn len(&self) -> usize {
        self.slots.lock().len()
    }

    /// Whether no id is in use.
    pub fn is_empty(&self) -> bool {
        self.slots.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test double: an object that may hold a user reference on another, like a HWPT on its IOAS.
    #[derive(Debug, Clone)]
    struct Obj {
        ty: ObjectType,
        _holds: Option<Arc<UserRef>>,
    }

    impl TableObject for Obj {
        fn object_type(&self) -> ObjectType {
            self.ty
        }
    }

    fn obj(ty: ObjectType) -> Obj {
        Obj { ty, _holds: None }
    }

    fn table() -> ObjectTable<Obj> {
        ObjectTable::new(Arc::new(FailPoints::default()))
    }

    #[test]
    fn ids_are_lowest_free_and_reserved_ones_are_invisible() {
        let t = table();
        let a = t.reserve(ObjectType::Ioas).unwrap();
        assert_eq!(a.id().raw(), 1);
        assert_eq!(t.get(1, None).unwrap_err(), ObjectError::NotFound(1));
        assert_eq!(t.reserved(), vec![(a.id(), ObjectType::Ioas)]);
        a.finalize(obj(ObjectType::Ioas));
        let b = t.reserve(ObjectType::Ioas).unwrap();
        assert_eq!(b.id().raw(), 2);
        drop(b); // abort
        assert_eq!(t.len(), 1);
        assert!(t.reserved().is_empty());
        t.reserve(ObjectType::Access)
            .unwrap()
            .finalize(obj(ObjectType::Access));
        assert_eq!(t.get(2, Some(ObjectType::Access)).unwrap().ty, ObjectType::Access);
        t.destroy(1).unwrap();
        assert_eq!(
            t.reserve(ObjectType::Ioas).unwrap().id().raw(),
            1,
            "freed ids are reused"
        );
    }

    #[test]
    fn typed_lookup_and_errnos() {
        let t = table();
        t.reserve(ObjectType::Ioas)
            .unwrap()
            .finalize(obj(ObjectType::Ioas));
        let err = t.get(1, Some(ObjectType::Device)).unwrap_err();
        assert!(matches!(err, ObjectError::WrongType { .. }));
        assert_eq!(err.errno(), rustix::io::Errno::NOENT);
        assert_eq!(t.destroy(7).unwrap_err().errno(), rustix::io::Errno::NOENT);
        assert_eq!(t.get(0, None).unwrap_err(), ObjectError::NotFound(0));
    }

    #[test]
    fn users_make_destroy_busy_until_released() {
        let t = table();
        t.reserve(ObjectType::Ioas)
            .unwrap()
            .finalize(obj(ObjectType::Ioas));
        let (_, user) = t.get_with_user(1, ObjectType::Ioas).unwrap();
        let hwpt = Obj {
            ty: ObjectType::HwptPaging,
            _holds: Some(Arc::new(user)),
        };
        t.reserve(ObjectType::HwptPaging).unwrap().finalize(hwpt);
        let err = t.destroy(1).unwrap_err();
        assert_eq!(err, ObjectError::Busy { id: 1, users: 1 });
        assert_eq!(err.errno(), rustix::io::Errno::BUSY);
        assert!(t.get(1, None).is_ok(), "a busy destroy changes nothing");
        drop(t.destroy(2).unwrap());
        assert_eq!(t.users(1).unwrap(), 0);
        t.destroy(1).unwrap();
        assert!(t.is_empty());
    }

    #[test]
    fn destroy_all_tears_down_in_dependency_order() {
        let t = table();
        // A chain: 3 uses 2 uses 1, created in that order; ids say nothing about order.
        t.reserve(ObjectType::Ioas)
            .unwrap()
            .finalize(obj(ObjectType::Ioas));
        let (_, u1) = t.get_with_user(1, ObjectType::Ioas).unwrap();
        t.reserve(ObjectType::HwptPaging).unwrap().finalize(Obj {
            ty: ObjectType::HwptPaging,
            _holds: Some(Arc::new(u1)),
        });
        let (_, u2) = t.get_with_user(2, ObjectType::HwptPaging).unwrap();
        t.reserve(ObjectType::Device).unwrap().finalize(Obj {
            ty: ObjectType::Device,
            _holds: Some(Arc::new(u2)),
        });
        assert_eq!(t.destroy_all(), vec![]);
        assert!(t.is_empty());
    }

    #[test]
    fn destroy_all_reports_what_an_outside_reference_pins() {
        let t = table();
        t.reserve(ObjectType::Ioas)
            .unwrap()
            .finalize(obj(ObjectType::Ioas));
        let (_, leaked) = t.get_with_user(1, ObjectType::Ioas).unwrap();
        let left = t.destroy_all();
        assert_eq!(left, vec![(ObjectId::new(1).unwrap(), ObjectType::Ioas)]);
        drop(leaked);
        assert_eq!(t.destroy_all(), vec![]);
    }

    #[test]
    fn injected_failure_reserves_nothing() {
        let fail = Arc::new(FailPoints::default());
        let t: ObjectTable<Obj> = ObjectTable::new(Arc::clone(&fail));
        fail.fail_nth(1);
        let err = t.reserve(ObjectType::Ioas).unwrap_err();
        assert_eq!(err, ObjectError::Injected(Site::ObjectAlloc));
        assert_eq!(err.errno(), rustix::io::Errno::NOMEM);
        assert!(t.is_empty());
        assert!(t.reserve(ObjectType::Ioas).is_ok(), "only the n-th step fails");
    }
}
