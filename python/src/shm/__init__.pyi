from ._shm import (
    MUTEX_LAYOUT as MUTEX_LAYOUT,
    SEMAPHORE_LAYOUT as SEMAPHORE_LAYOUT,
    SPEC_VERSION as SPEC_VERSION,
    Mutex as Mutex,
    OwnerDeadError as OwnerDeadError,
    Segment as Segment,
    Semaphore as Semaphore,
    token as token,
)
