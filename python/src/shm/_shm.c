/* shm._shm: the Python binding of c/shm.h (SPEC.md, spec 1).
 *
 * Segment exports its mapping through the buffer protocol; Mutex and
 * Semaphore are views of 8 bytes of a Segment at an offset. Blocking calls
 * release the GIL and sleep in slices of at most 50 ms, between which they
 * take the GIL back to run signal handlers (so Ctrl-C works). A Segment
 * refuses to close while a buffer or a blocked call still uses its mapping.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "shm.h"

static PyObject *OwnerDeadError;

typedef struct {
	PyObject_HEAD
	shm_seg seg;
	Py_ssize_t exports; /* buffers handed out, blocked calls in progress */
} SegmentObject;

static PyTypeObject SegmentType;

static PyObject *set_errno(int rc, const char *what) {
	int e = rc < 0 ? -rc : EIO;
	PyObject *args = Py_BuildValue("(iss)", e, strerror(e), what);
	if (args == NULL) return NULL;
	/* OSError(errno, strerror, filename) picks the subclass: FileExistsError,
	 * FileNotFoundError, PermissionError, TimeoutError... */
	PyErr_SetObject(PyExc_OSError, args);
	Py_DECREF(args);
	return NULL;
}

static int seg_check_open(SegmentObject *s) {
	if (s->seg.addr == NULL) {
		PyErr_SetString(PyExc_ValueError, "shm: segment is closed");
		return -1;
	}
	return 0;
}

static int64_t timeout_ns(PyObject *timeout, int *err) {
	*err = 0;
	if (timeout == NULL || timeout == Py_None) return -1;
	double t = PyFloat_AsDouble(timeout);
	if (t == -1.0 && PyErr_Occurred()) {
		*err = 1;
		return 0;
	}
	if (t < 0) return -1;
	if (t > 9e9) return -1;
	return (int64_t)(t * 1e9);
}

/* ---- Segment ------------------------------------------------------------ */

static PyObject *Segment_new_from(PyTypeObject *type) {
	SegmentObject *s = (SegmentObject *)type->tp_alloc(type, 0);
	if (s == NULL) return NULL;
	s->seg.fd = -1;
	s->seg.addr = NULL;
	s->seg.presence = -1;
	s->exports = 0;
	return (PyObject *)s;
}

static PyObject *Segment_tp_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
	(void)args;
	(void)kw;
	return Segment_new_from(type);
}

static PyObject *Segment_create(PyObject *cls, PyObject *args, PyObject *kw) {
	static char *kwlist[] = {"name", "size", "mode", NULL};
	const char *name;
	Py_ssize_t size;
	unsigned int mode = 0600;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "sn|I:create", kwlist, &name, &size, &mode)) return NULL;
	if (size <= 0) {
		PyErr_SetString(PyExc_ValueError, "shm: size must be positive");
		return NULL;
	}
	SegmentObject *s = (SegmentObject *)Segment_new_from((PyTypeObject *)cls);
	if (s == NULL) return NULL;
	int r;
	Py_BEGIN_ALLOW_THREADS r = shm_seg_create(&s->seg, name, (size_t)size, (mode_t)mode);
	Py_END_ALLOW_THREADS if (r < 0) {
		Py_DECREF(s);
		return set_errno(r, name);
	}
	return (PyObject *)s;
}

static PyObject *Segment_open(PyObject *cls, PyObject *args, PyObject *kw) {
	static char *kwlist[] = {"name", "readonly", "size", NULL};
	const char *name;
	int readonly = 0;
	Py_ssize_t size = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pn:open", kwlist, &name, &readonly, &size)) return NULL;
	if (size < 0) {
		PyErr_SetString(PyExc_ValueError, "shm: negative size");
		return NULL;
	}
	SegmentObject *s = (SegmentObject *)Segment_new_from((PyTypeObject *)cls);
	if (s == NULL) return NULL;
	int r;
	Py_BEGIN_ALLOW_THREADS r = shm_seg_open(&s->seg, name, readonly, (size_t)size);
	Py_END_ALLOW_THREADS if (r < 0) {
		Py_DECREF(s);
		return set_errno(r, name);
	}
	return (PyObject *)s;
}

static PyObject *Segment_unlink_name(PyObject *cls, PyObject *args) {
	(void)cls;
	const char *name;
	if (!PyArg_ParseTuple(args, "s:unlink", &name)) return NULL;
	int r = shm_seg_unlink(name);
	if (r < 0) return set_errno(r, name);
	Py_RETURN_NONE;
}

static PyObject *Segment_close(SegmentObject *s, PyObject *unused) {
	(void)unused;
	if (s->seg.addr == NULL) Py_RETURN_NONE;
	if (s->exports > 0) {
		PyErr_Format(PyExc_BufferError,
		             "shm: segment still in use (%zd memoryviews or blocked calls): release them first", s->exports);
		return NULL;
	}
	int r = shm_seg_close(&s->seg);
	if (r < 0) return set_errno(r, s->seg.name);
	Py_RETURN_NONE;
}

static void Segment_dealloc(SegmentObject *s) {
	if (s->seg.addr != NULL && s->exports == 0) shm_seg_close(&s->seg);
	Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyObject *Segment_enter(PyObject *s, PyObject *unused) {
	(void)unused;
	Py_INCREF(s);
	return s;
}

static PyObject *Segment_exit(SegmentObject *s, PyObject *args) {
	(void)args;
	return Segment_close(s, NULL);
}

static PyObject *Segment_peer_alive(SegmentObject *s, PyObject *args) {
	unsigned long long tok;
	if (!PyArg_ParseTuple(args, "K:peer_alive", &tok)) return NULL;
	if (seg_check_open(s) < 0) return NULL;
	return PyBool_FromLong(shm_peer_alive(&s->seg, (uint64_t)tok));
}

static PyObject *Segment_wait_peer_gone(SegmentObject *s, PyObject *args, PyObject *kw) {
	static char *kwlist[] = {"token", "timeout", NULL};
	unsigned long long tok;
	PyObject *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "K|O:wait_peer_gone", kwlist, &tok, &timeout)) return NULL;
	if (seg_check_open(s) < 0) return NULL;
	int err;
	int64_t t = timeout_ns(timeout, &err);
	if (err) return NULL;
	int64_t end = t < 0 ? INT64_MAX : shm__now_ns() + t;
	s->exports++;
	for (;;) {
		int64_t left = end == INT64_MAX ? 50000000 : end - shm__now_ns();
		if (left < 0) left = 0;
		if (left > 50000000) left = 50000000;
		int r;
		Py_BEGIN_ALLOW_THREADS r = shm_wait_peer_gone(&s->seg, (uint64_t)tok, left);
		Py_END_ALLOW_THREADS if (r == 0) {
			s->exports--;
			Py_RETURN_TRUE;
		}
		if (r != -ETIMEDOUT) {
			s->exports--;
			return set_errno(r, "wait_peer_gone");
		}
		if (end != INT64_MAX && shm__now_ns() >= end) {
			s->exports--;
			Py_RETURN_FALSE;
		}
		if (PyErr_CheckSignals() < 0) {
			s->exports--;
			return NULL;
		}
	}
}

static int Segment_getbuffer(SegmentObject *s, Py_buffer *view, int flags) {
	if (seg_check_open(s) < 0) {
		view->obj = NULL;
		PyErr_SetString(PyExc_BufferError, "shm: segment is closed");
		return -1;
	}
	if (PyBuffer_FillInfo(view, (PyObject *)s, s->seg.addr, (Py_ssize_t)s->seg.size, s->seg.readonly, flags) < 0)
		return -1;
	s->exports++;
	return 0;
}

static void Segment_releasebuffer(SegmentObject *s, Py_buffer *view) {
	(void)view;
	s->exports--;
}

static PyBufferProcs Segment_as_buffer = {(getbufferproc)Segment_getbuffer, (releasebufferproc)Segment_releasebuffer};

static PyObject *Segment_get_name(SegmentObject *s, void *c) {
	(void)c;
	return PyUnicode_FromString(s->seg.name);
}
static PyObject *Segment_get_size(SegmentObject *s, void *c) {
	(void)c;
	return PyLong_FromSize_t(s->seg.addr ? s->seg.size : 0);
}
static PyObject *Segment_get_readonly(SegmentObject *s, void *c) {
	(void)c;
	return PyBool_FromLong(s->seg.readonly);
}
static PyObject *Segment_get_closed(SegmentObject *s, void *c) {
	(void)c;
	return PyBool_FromLong(s->seg.addr == NULL);
}
static PyObject *Segment_get_fd(SegmentObject *s, void *c) {
	(void)c;
	return PyLong_FromLong(s->seg.addr ? s->seg.fd : -1);
}

static PyGetSetDef Segment_getset[] = {
    {"name", (getter)Segment_get_name, NULL, "Canonical name, with its leading slash.", NULL},
    {"size", (getter)Segment_get_size, NULL, "Size of the mapping in bytes; 0 once closed.", NULL},
    {"readonly", (getter)Segment_get_readonly, NULL, "Whether the mapping is read-only.", NULL},
    {"closed", (getter)Segment_get_closed, NULL, "Whether the segment is closed.", NULL},
    {"fd", (getter)Segment_get_fd, NULL, "The descriptor, -1 once closed.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Segment_methods[] = {
    {"create", (PyCFunction)(void (*)(void))Segment_create, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "create(name, size, mode=0o600) -> Segment\n\nCreate a new segment exclusively (SPEC.md 2.3)."},
    {"open", (PyCFunction)(void (*)(void))Segment_open, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "open(name, readonly=False, size=0) -> Segment\n\nOpen an existing segment (SPEC.md 2.4)."},
    {"unlink", (PyCFunction)Segment_unlink_name, METH_VARARGS | METH_STATIC,
     "unlink(name)\n\nRemove a segment's name."},
    {"close", (PyCFunction)Segment_close, METH_NOARGS,
     "Unmap and close. BufferError while memoryviews of it are alive."},
    {"peer_alive", (PyCFunction)Segment_peer_alive, METH_VARARGS,
     "peer_alive(token) -> bool\n\nWhether the process of token may still map this segment (SPEC.md LIVE-5)."},
    {"wait_peer_gone", (PyCFunction)(void (*)(void))Segment_wait_peer_gone, METH_VARARGS | METH_KEYWORDS,
     "wait_peer_gone(token, timeout=None) -> bool\n\nWait until that process no longer maps the segment."},
    {"__enter__", (PyCFunction)Segment_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Segment_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SegmentType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shm._shm.Segment",
    .tp_basicsize = sizeof(SegmentObject),
    .tp_dealloc = (destructor)Segment_dealloc,
    .tp_as_buffer = &Segment_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A mapped shared memory segment. Use Segment.create or Segment.open;\n"
              "memoryview(seg) is the mapping, without a copy.",
    .tp_methods = Segment_methods,
    .tp_getset = Segment_getset,
    .tp_new = Segment_tp_new,
};

/* ---- Mutex and Semaphore ------------------------------------------------ */

typedef struct {
	PyObject_HEAD
	SegmentObject *seg;
	Py_ssize_t offset;
} WordObject;

static int Word_init(WordObject *w, PyObject *args, PyObject *kw, size_t align) {
	static char *kwlist[] = {"segment", "offset", NULL};
	PyObject *seg;
	Py_ssize_t off = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|n", kwlist, &SegmentType, &seg, &off)) return -1;
	SegmentObject *s = (SegmentObject *)seg;
	if (seg_check_open(s) < 0) return -1;
	if (s->seg.readonly) {
		PyErr_SetString(PyExc_ValueError, "shm: segment is read-only");
		return -1;
	}
	if (off < 0 || (size_t)off % align != 0 || (size_t)off + 8 > s->seg.size) {
		PyErr_Format(PyExc_ValueError, "shm: offset %zd must be a multiple of %zu with 8 bytes inside the %zu-byte segment",
		             off, align, s->seg.size);
		return -1;
	}
	Py_INCREF(seg);
	Py_XSETREF(w->seg, s);
	w->offset = off;
	return 0;
}

static void Word_dealloc(WordObject *w) {
	Py_XDECREF(w->seg);
	Py_TYPE(w)->tp_free((PyObject *)w);
}

static void *word_addr(WordObject *w) {
	if (w->seg == NULL) {
		PyErr_SetString(PyExc_ValueError, "shm: not initialised");
		return NULL;
	}
	if (seg_check_open(w->seg) < 0) return NULL;
	return (char *)w->seg->seg.addr + w->offset;
}

static int Mutex_init(WordObject *w, PyObject *args, PyObject *kw) { return Word_init(w, args, kw, 8); }
static int Sem_init(WordObject *w, PyObject *args, PyObject *kw) { return Word_init(w, args, kw, 4); }

/* Runs a blocking call in 50 ms slices with the GIL released. fn returns 0
 * or SHM_OWNERDEAD (done), -ETIMEDOUT (slice over), or another error. */
static int blocking(WordObject *w, void *p, int64_t t, int (*fn)(shm_seg *, void *, int64_t), int *rc) {
	int64_t end = t < 0 ? INT64_MAX : shm__now_ns() + t;
	w->seg->exports++;
	for (;;) {
		int64_t left = end == INT64_MAX ? 50000000 : end - shm__now_ns();
		if (left < 0) left = 0;
		if (left > 50000000) left = 50000000;
		int r;
		Py_BEGIN_ALLOW_THREADS r = fn(&w->seg->seg, p, left);
		Py_END_ALLOW_THREADS if (r != -ETIMEDOUT || (end != INT64_MAX && shm__now_ns() >= end)) {
			w->seg->exports--;
			*rc = r;
			return 0;
		}
		if (PyErr_CheckSignals() < 0) {
			w->seg->exports--;
			return -1;
		}
	}
}

static int mutex_fn(shm_seg *s, void *p, int64_t t) { return shm_mutex_timedlock(s, (shm_mutex *)p, t); }
static int sem_fn(shm_seg *s, void *p, int64_t t) {
	(void)s;
	return shm_sem_timedwait((shm_sem *)p, t);
}

static PyObject *acquire_impl(WordObject *w, int block, PyObject *timeout, int is_mutex) {
	void *p = word_addr(w);
	if (p == NULL) return NULL;
	int err;
	int64_t t = timeout_ns(timeout, &err);
	if (err) return NULL;
	int rc;
	if (!block) {
		rc = is_mutex ? shm_mutex_trylock((shm_mutex *)p) : shm_sem_trywait((shm_sem *)p);
		if (rc == -EBUSY || rc == -EAGAIN) Py_RETURN_FALSE;
	} else if (blocking(w, p, t, is_mutex ? mutex_fn : sem_fn, &rc) < 0) {
		return NULL;
	}
	if (rc == 0) Py_RETURN_TRUE;
	if (rc == -ETIMEDOUT) Py_RETURN_FALSE;
	if (rc == SHM_OWNERDEAD) {
		PyErr_SetString(OwnerDeadError,
		                "shm: previous owner died holding the lock; the lock is now held by this process: "
		                "check the data it guards, then release()");
		return NULL;
	}
	return set_errno(rc, is_mutex ? "mutex" : "semaphore");
}

static PyObject *acquire_common(WordObject *w, PyObject *args, PyObject *kw, int is_mutex) {
	static char *kwlist[] = {"blocking", "timeout", NULL};
	int block = 1;
	PyObject *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|pO:acquire", kwlist, &block, &timeout)) return NULL;
	return acquire_impl(w, block, timeout, is_mutex);
}

static PyObject *Mutex_acquire(WordObject *w, PyObject *args, PyObject *kw) { return acquire_common(w, args, kw, 1); }

static PyObject *Mutex_release(WordObject *w, PyObject *unused) {
	(void)unused;
	void *p = word_addr(w);
	if (p == NULL) return NULL;
	int r = shm_mutex_unlock((shm_mutex *)p);
	if (r == -EPERM) {
		PyErr_SetString(PyExc_RuntimeError, "shm: release of a Mutex this process does not hold");
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *Mutex_locked(WordObject *w, PyObject *unused) {
	(void)unused;
	shm_mutex *m = word_addr(w);
	if (m == NULL) return NULL;
	return PyBool_FromLong((uint32_t)atomic_load(&m->w) != 0);
}

static PyObject *Word_exit(WordObject *w, PyObject *args);

static PyObject *Mutex_enter(WordObject *w, PyObject *unused) {
	(void)unused;
	PyObject *r = acquire_impl(w, 1, Py_None, 1);
	if (r == NULL) return NULL;
	Py_DECREF(r);
	Py_INCREF(w);
	return (PyObject *)w;
}

static PyObject *Word_exit(WordObject *w, PyObject *args) {
	(void)args;
	return Mutex_release(w, NULL);
}

static PyMethodDef Mutex_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))Mutex_acquire, METH_VARARGS | METH_KEYWORDS,
     "acquire(blocking=True, timeout=None) -> bool\n\n"
     "Lock. True when locked, False when not blocking or timed out. Raises\n"
     "OwnerDeadError, with the lock held, when it took the lock over from a\n"
     "process that died holding it (SPEC.md MTX-9). Releases the GIL while it waits."},
    {"release", (PyCFunction)Mutex_release, METH_NOARGS,
     "Unlock. RuntimeError if this process does not hold the lock."},
    {"locked", (PyCFunction)Mutex_locked, METH_NOARGS, "Whether some process holds the lock."},
    {"__enter__", (PyCFunction)Mutex_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Word_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyObject *Sem_acquire(WordObject *w, PyObject *args, PyObject *kw) { return acquire_common(w, args, kw, 0); }

static PyObject *Sem_release(WordObject *w, PyObject *unused) {
	(void)unused;
	void *p = word_addr(w);
	if (p == NULL) return NULL;
	int r = shm_sem_post((shm_sem *)p);
	if (r < 0) return set_errno(r, "semaphore");
	Py_RETURN_NONE;
}

static PyObject *Sem_get_value(WordObject *w, void *c) {
	(void)c;
	shm_sem *p = word_addr(w);
	if (p == NULL) return NULL;
	return PyLong_FromUnsignedLong(shm_sem_value(p));
}

static PyObject *Sem_enter(WordObject *w, PyObject *unused) {
	(void)unused;
	PyObject *r = acquire_impl(w, 1, Py_None, 0);
	if (r == NULL) return NULL;
	Py_DECREF(r);
	Py_INCREF(w);
	return (PyObject *)w;
}

static PyObject *Sem_exit(WordObject *w, PyObject *args) {
	(void)args;
	return Sem_release(w, NULL);
}

static PyMethodDef Sem_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))Sem_acquire, METH_VARARGS | METH_KEYWORDS,
     "acquire(blocking=True, timeout=None) -> bool\n\n"
     "Take one from the count, waiting while it is 0. True when taken, False\n"
     "when not blocking or timed out. Releases the GIL while it waits."},
    {"release", (PyCFunction)Sem_release, METH_NOARGS,
     "Add one to the count (post). OverflowError-like OSError(EOVERFLOW) at 2**31-1."},
    {"__enter__", (PyCFunction)Sem_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Sem_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Sem_getset[] = {
    {"value", (getter)Sem_get_value, NULL, "The count: how many acquire() calls would not wait now.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject MutexType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shm._shm.Mutex",
    .tp_basicsize = sizeof(WordObject),
    .tp_dealloc = (destructor)Word_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Mutex(segment, offset=0): the process-shared Mutex (layout 2) at offset in segment.",
    .tp_methods = Mutex_methods,
    .tp_init = (initproc)Mutex_init,
    .tp_new = PyType_GenericNew,
};

static PyTypeObject SemType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shm._shm.Semaphore",
    .tp_basicsize = sizeof(WordObject),
    .tp_dealloc = (destructor)Word_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Semaphore(segment, offset=0): the process-shared Semaphore (layout 1) at offset in segment.",
    .tp_methods = Sem_methods,
    .tp_getset = Sem_getset,
    .tp_init = (initproc)Sem_init,
    .tp_new = PyType_GenericNew,
};

/* ---- Ring --------------------------------------------------------------- */

static PyObject *CorruptError, *RingClosed;

#define RING_SLICE_NS 50000000ll /* blocking waits sleep at most this with the GIL released */

static PyObject *ring_err(int64_t rc, const char *what) {
	int e = rc < 0 ? (int)-rc : EIO;
	PyObject *cls = PyExc_OSError;
	if (e == EBADMSG) cls = CorruptError;
	else if (e == ENODATA) cls = RingClosed;
	PyObject *args = Py_BuildValue("(iss)", e, strerror(e), what);
	if (args == NULL) return NULL;
	PyErr_SetObject(cls, args);
	Py_DECREF(args);
	return NULL;
}

typedef struct {
	PyObject_HEAD
	shm_ring ring;
	int open;
	Py_ssize_t users; /* open ends, exported views, blocked calls */
	PyObject *name;
} RingObject;

typedef struct {
	PyObject_HEAD
	RingObject *ring;
	void *addr;
	Py_ssize_t len;
	int readonly, valid;
	Py_ssize_t exports;
} ViewObject;

typedef struct {
	PyObject_HEAD
	RingObject *ring;
	shm_ring_producer p;
	int attached, busy;
	PyObject *view; /* memoryview of the open claim */
} ProducerObject;

typedef struct {
	PyObject_HEAD
	RingObject *ring;
	shm_ring_consumer c;
	int attached, busy;
	PyObject *view; /* memoryview of the pending read */
	PyObject *buf;  /* receive buffer (bytearray of max_message) */
} ConsumerObject;

static PyTypeObject RingType, ViewType, ProducerType, ConsumerType;

/* View: exports a span of the ring's mapping until invalidated. */
static int View_getbuffer(ViewObject *v, Py_buffer *view, int flags) {
	if (!v->valid) {
		view->obj = NULL;
		PyErr_SetString(PyExc_BufferError, "shm: ring view released (after commit/release/close)");
		return -1;
	}
	if (PyBuffer_FillInfo(view, (PyObject *)v, v->addr, v->len, v->readonly, flags) < 0) return -1;
	v->exports++;
	return 0;
}
static void View_releasebuffer(ViewObject *v, Py_buffer *view) {
	(void)view;
	v->exports--;
}
static void View_dealloc(ViewObject *v) {
	if (v->ring) {
		v->ring->users--;
		Py_DECREF(v->ring);
	}
	Py_TYPE(v)->tp_free((PyObject *)v);
}
static PyBufferProcs View_as_buffer = {(getbufferproc)View_getbuffer, (releasebufferproc)View_releasebuffer};
static PyTypeObject ViewType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shm._shm.RingView",
    .tp_basicsize = sizeof(ViewObject),
    .tp_dealloc = (destructor)View_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The bytes of a claim or read, in the ring; refuses new buffers once released.",
    .tp_as_buffer = &View_as_buffer,
};

/* make_view returns a memoryview over a fresh View of addr[0:len]. */
static PyObject *make_view(RingObject *r, void *addr, size_t len, int readonly) {
	ViewObject *v = PyObject_New(ViewObject, &ViewType);
	if (v == NULL) return NULL;
	v->ring = r;
	Py_INCREF(r);
	r->users++;
	v->addr = addr;
	v->len = (Py_ssize_t)len;
	v->readonly = readonly;
	v->valid = 1;
	v->exports = 0;
	PyObject *mv = PyMemoryView_FromObject((PyObject *)v);
	Py_DECREF(v); /* the memoryview holds it */
	return mv;
}

/* drop_view releases the memoryview handed out and marks its View invalid:
 * memoryviews and buffers taken from it before stay readable (they point at
 * ring memory the Ring keeps mapped while they live) but no new ones. */
static void drop_view(PyObject **slot) {
	PyObject *mv = *slot;
	if (mv == NULL) return;
	*slot = NULL;
	PyObject *obj = PyMemoryView_GET_BUFFER(mv)->obj;
	if (obj != NULL && Py_IS_TYPE(obj, &ViewType)) ((ViewObject *)obj)->valid = 0;
	PyObject *r = PyObject_CallMethod(mv, "release", NULL);
	if (r == NULL) PyErr_Clear(); /* still exported (numpy): the View keeps the ring mapped */
	Py_XDECREF(r);
	Py_DECREF(mv);
}

static int ring_check(RingObject *r) {
	if (!r->open) {
		PyErr_SetString(PyExc_ValueError, "shm: ring is closed");
		return -1;
	}
	return 0;
}

static RingObject *ring_alloc(PyTypeObject *type, const char *name) {
	RingObject *r = (RingObject *)type->tp_alloc(type, 0);
	if (r == NULL) return NULL;
	r->open = 0;
	r->users = 0;
	r->name = PyUnicode_FromString(name);
	if (r->name == NULL) {
		Py_DECREF(r);
		return NULL;
	}
	return r;
}

static PyObject *Ring_create(PyObject *cls, PyObject *args, PyObject *kw) {
	static char *kwlist[] = {"name", "capacity", "max_message", "producers", "mode", NULL};
	const char *name;
	unsigned long long cap, maxmsg;
	unsigned int producers = 1, mode = 0600;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "sKK|II:create", kwlist, &name, &cap, &maxmsg, &producers, &mode))
		return NULL;
	RingObject *r = ring_alloc((PyTypeObject *)cls, name);
	if (r == NULL) return NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = shm_ring_create(&r->ring, name, cap, maxmsg, producers, (mode_t)mode);
	Py_END_ALLOW_THREADS if (rc < 0) {
		Py_DECREF(r);
		return ring_err(rc, name);
	}
	r->open = 1;
	return (PyObject *)r;
}

static PyObject *Ring_open(PyObject *cls, PyObject *args) {
	const char *name;
	if (!PyArg_ParseTuple(args, "s:open", &name)) return NULL;
	RingObject *r = ring_alloc((PyTypeObject *)cls, name);
	if (r == NULL) return NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS rc = shm_ring_open(&r->ring, name);
	Py_END_ALLOW_THREADS if (rc < 0) {
		Py_DECREF(r);
		return ring_err(rc, name);
	}
	r->open = 1;
	return (PyObject *)r;
}

static PyObject *Ring_size(PyObject *cls, PyObject *args) {
	(void)cls;
	unsigned long long cap;
	unsigned int producers = 1;
	if (!PyArg_ParseTuple(args, "K|I:size", &cap, &producers)) return NULL;
	return PyLong_FromSize_t(shm_ring_size(cap, producers));
}

static PyObject *Ring_close(RingObject *r, PyObject *unused) {
	(void)unused;
	if (!r->open) Py_RETURN_NONE;
	if (r->users > 0) {
		PyErr_SetString(PyExc_BufferError, "shm: ring still has open producers, consumers or views");
		return NULL;
	}
	r->open = 0;
	int rc = shm_ring_close(&r->ring);
	if (rc < 0) return ring_err(rc, PyUnicode_AsUTF8(r->name));
	Py_RETURN_NONE;
}

static void Ring_dealloc(RingObject *r) {
	if (r->open && r->users == 0) shm_ring_close(&r->ring);
	Py_XDECREF(r->name);
	Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyObject *Ring_enter(PyObject *self, PyObject *unused) {
	(void)unused;
	Py_INCREF(self);
	return self;
}
static PyObject *Ring_exit(RingObject *r, PyObject *args) {
	(void)args;
	return Ring_close(r, NULL);
}

static PyObject *Ring_get_capacity(RingObject *r, void *c) {
	(void)c;
	if (ring_check(r) < 0) return NULL;
	return PyLong_FromUnsignedLongLong(shm_ring_capacity(&r->ring));
}
static PyObject *Ring_get_max_message(RingObject *r, void *c) {
	(void)c;
	if (ring_check(r) < 0) return NULL;
	return PyLong_FromUnsignedLongLong(shm_ring_max_message(&r->ring));
}
static PyObject *Ring_get_multi(RingObject *r, void *c) {
	(void)c;
	if (ring_check(r) < 0) return NULL;
	return PyBool_FromLong(shm_ring_multi_producer(&r->ring));
}
static PyObject *Ring_get_name(RingObject *r, void *c) {
	(void)c;
	Py_INCREF(r->name);
	return r->name;
}
static PyObject *Ring_get_closed(RingObject *r, void *c) {
	(void)c;
	return PyBool_FromLong(!r->open);
}

static PyObject *Ring_producer(RingObject *r, PyObject *args, PyObject *kw) {
	static char *kwlist[] = {"polling", NULL};
	int polling = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:producer", kwlist, &polling)) return NULL;
	if (ring_check(r) < 0) return NULL;
	ProducerObject *p = PyObject_New(ProducerObject, &ProducerType);
	if (p == NULL) return NULL;
	p->ring = r;
	Py_INCREF(r);
	p->attached = 0;
	p->busy = 0;
	p->view = NULL;
	int rc = shm_ring_producer_attach(&r->ring, &p->p, polling ? SHM_RING_POLLING : 0);
	if (rc < 0) {
		Py_DECREF(p);
		return ring_err(rc, PyUnicode_AsUTF8(r->name));
	}
	p->attached = 1;
	r->users++;
	return (PyObject *)p;
}

static PyObject *Ring_consumer(RingObject *r, PyObject *args, PyObject *kw) {
	static char *kwlist[] = {"polling", NULL};
	int polling = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:consumer", kwlist, &polling)) return NULL;
	if (ring_check(r) < 0) return NULL;
	ConsumerObject *c = PyObject_New(ConsumerObject, &ConsumerType);
	if (c == NULL) return NULL;
	c->ring = r;
	Py_INCREF(r);
	c->attached = 0;
	c->busy = 0;
	c->view = NULL;
	c->buf = NULL;
	int rc = shm_ring_consumer_attach(&r->ring, &c->c, polling ? SHM_RING_POLLING : 0);
	if (rc < 0) {
		Py_DECREF(c);
		return ring_err(rc, PyUnicode_AsUTF8(r->name));
	}
	c->attached = 1;
	r->users++;
	return (PyObject *)c;
}

static PyMethodDef Ring_methods[] = {
    {"create", (PyCFunction)(void (*)(void))Ring_create, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "create(name, capacity, max_message, producers=1, mode=0o600) -> Ring\n\n"
     "Create the named segment holding an empty ring (SPEC.md section 9): capacity\n"
     "bytes of data (a power of two), messages up to max_message bytes, up to\n"
     "producers producers (1: single-producer). FileExistsError if the name exists."},
    {"open", (PyCFunction)Ring_open, METH_VARARGS | METH_CLASS,
     "open(name) -> Ring\n\nOpen a ring created by any peer (Go, C, Python). OSError(EPROTO) if the\n"
     "segment is not a ring of this layout."},
    {"size", (PyCFunction)Ring_size, METH_VARARGS | METH_STATIC,
     "size(capacity, producers=1) -> int: the segment bytes such a ring needs."},
    {"producer", (PyCFunction)(void (*)(void))Ring_producer, METH_VARARGS | METH_KEYWORDS,
     "producer(polling=False) -> Producer\n\nAttach as a producer. BlockingIOError(EBUSY)-like OSError when every\n"
     "producer slot is held by a live process."},
    {"consumer", (PyCFunction)(void (*)(void))Ring_consumer, METH_VARARGS | METH_KEYWORDS,
     "consumer(polling=False) -> Consumer\n\nAttach as the consumer (one at a time; OSError(EBUSY) if a live one is\n"
     "attached; a dead one's end is taken over)."},
    {"close", (PyCFunction)Ring_close, METH_NOARGS,
     "Unmap the ring. BufferError while producers, consumers or views are open."},
    {"__enter__", (PyCFunction)Ring_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Ring_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Ring_getset[] = {
    {"capacity", (getter)Ring_get_capacity, NULL, "Data bytes.", NULL},
    {"max_message", (getter)Ring_get_max_message, NULL, "Largest message in bytes.", NULL},
    {"multi_producer", (getter)Ring_get_multi, NULL, "Whether several producers may attach.", NULL},
    {"name", (getter)Ring_get_name, NULL, "The segment's name.", NULL},
    {"closed", (getter)Ring_get_closed, NULL, "Whether close() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RingType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shm._shm.Ring",
    .tp_basicsize = sizeof(RingObject),
    .tp_dealloc = (destructor)Ring_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A byte-message ring in shared memory (SPEC.md section 9), shared with Go and C.\n"
              "Make one with Ring.create or Ring.open.",
    .tp_methods = Ring_methods,
    .tp_getset = Ring_getset,
};

/* ---- blocking helper ---- */

/* Each op runs with the GIL released for at most one slice; run_blocking
 * repeats it until it succeeds, fails otherwise, the deadline passes, or a
 * signal handler raises. */
typedef int64_t (*ring_op)(void *ctx, int64_t slice_ns);

static int64_t run_blocking(ring_op op, void *ctx, PyObject *timeout, int *pyerr) {
	int err;
	*pyerr = 0;
	int64_t t = timeout_ns(timeout, &err);
	if (err) {
		*pyerr = 1;
		return 0;
	}
	if (t == 0) return op(ctx, 0); /* non-blocking: with the GIL, no wait */
	int64_t end = t < 0 ? INT64_MAX : shm__now_ns() + t;
	for (;;) {
		int64_t slice = RING_SLICE_NS;
		if (end != INT64_MAX) {
			int64_t left = end - shm__now_ns();
			if (left <= 0) left = 1;
			if (left < slice) slice = left;
		}
		int64_t rc;
		Py_BEGIN_ALLOW_THREADS rc = op(ctx, slice);
		Py_END_ALLOW_THREADS if (rc != -ETIMEDOUT) return rc;
		if (end != INT64_MAX && shm__now_ns() >= end) return rc;
		if (PyErr_CheckSignals() < 0) {
			*pyerr = 1;
			return 0;
		}
	}
}

/* ---- Producer ---- */

static int prod_check(ProducerObject *p) {
	if (!p->attached) {
		PyErr_SetString(PyExc_ValueError, "shm: producer is closed");
		return -1;
	}
	if (p->busy) {
		PyErr_SetString(PyExc_RuntimeError, "shm: producer in use by another thread");
		return -1;
	}
	return 0;
}

struct send_ctx {
	shm_ring_producer *p;
	const void *msg;
	size_t n;
	void *out;
};
static int64_t op_send(void *ctx, int64_t ns) {
	struct send_ctx *s = ctx;
	return shm_ring_send(s->p, s->msg, s->n, ns);
}
static int64_t op_claim(void *ctx, int64_t ns) {
	struct send_ctx *s = ctx;
	return shm_ring_claim(s->p, s->n, &s->out, ns);
}

static PyObject *Producer_send(ProducerObject *p, PyObject *args, PyObject *kw) {
	static char *kwlist[] = {"data", "timeout", NULL};
	Py_buffer b;
	PyObject *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|O:send", kwlist, &b, &timeout)) return NULL;
	if (prod_check(p) < 0) {
		PyBuffer_Release(&b);
		return NULL;
	}
	struct send_ctx s = {&p->p, b.buf, (size_t)b.len, NULL};
	int pyerr;
	p->busy = 1;
	int64_t rc = run_blocking(op_send, &s, timeout, &pyerr);
	p->busy = 0;
	PyBuffer_Release(&b);
	if (pyerr) return NULL;
	if (rc < 0) return ring_err(rc, PyUnicode_AsUTF8(p->ring->name));
	Py_RETURN_NONE;
}

static PyObject *Producer_claim(ProducerObject *p, PyObject *args, PyObject *kw) {
	static char *kwlist[] = {"n", "timeout", NULL};
	Py_ssize_t n;
	PyObject *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "n|O:claim", kwlist, &n, &timeout)) return NULL;
	if (prod_check(p) < 0) return NULL;
	if (n < 0) {
		PyErr_SetString(PyExc_ValueError, "shm: negative claim");
		return NULL;
	}
	if (p->view != NULL) {
		PyErr_SetString(PyExc_RuntimeError, "shm: a claim is already open; commit it first");
		return NULL;
	}
	struct send_ctx s = {&p->p, NULL, (size_t)n, NULL};
	int pyerr;
	p->busy = 1;
	int64_t rc = run_blocking(op_claim, &s, timeout, &pyerr);
	p->busy = 0;
	if (pyerr) return NULL;
	if (rc < 0) return ring_err(rc, PyUnicode_AsUTF8(p->ring->name));
	p->view = make_view(p->ring, s.out, (size_t)n, 0);
	if (p->view == NULL) return NULL;
	Py_INCREF(p->view);
	return p->view;
}

static PyObject *Producer_commit(ProducerObject *p, PyObject *args) {
	Py_ssize_t n = -1;
	if (!PyArg_ParseTuple(args, "|n:commit", &n)) return NULL;
	if (prod_check(p) < 0) return NULL;
	if (p->view == NULL) {
		PyErr_SetString(PyExc_RuntimeError, "shm: no open claim");
		return NULL;
	}
	if (n < 0) n = PyMemoryView_GET_BUFFER(p->view)->len;
	drop_view(&p->view);
	int rc = shm_ring_commit(&p->p, (size_t)n);
	if (rc < 0) return ring_err(rc, PyUnicode_AsUTF8(p->ring->name));
	Py_RETURN_NONE;
}

static PyObject *Producer_close(ProducerObject *p, PyObject *unused) {
	(void)unused;
	if (!p->attached) Py_RETURN_NONE;
	if (p->busy) {
		PyErr_SetString(PyExc_RuntimeError, "shm: producer in use by another thread");
		return NULL;
	}
	drop_view(&p->view);
	p->attached = 0;
	p->ring->users--;
	int rc = shm_ring_producer_close(&p->p);
	if (rc < 0) return ring_err(rc, PyUnicode_AsUTF8(p->ring->name));
	Py_RETURN_NONE;
}

static void Producer_dealloc(ProducerObject *p) {
	if (p->attached && !p->busy) {
		PyObject *r = Producer_close(p, NULL);
		if (r == NULL) PyErr_Clear();
		Py_XDECREF(r);
	}
	Py_XDECREF(p->view);
	Py_XDECREF(p->ring);
	PyObject_Free(p);
}

static PyObject *Producer_exit(ProducerObject *p, PyObject *args) {
	(void)args;
	return Producer_close(p, NULL);
}

static PyMethodDef Producer_methods[] = {
    {"send", (PyCFunction)(void (*)(void))Producer_send, METH_VARARGS | METH_KEYWORDS,
     "send(data, timeout=None)\n\nCopy one message (any bytes-like) into the ring. timeout None blocks while\n"
     "the ring is full, 0 raises BlockingIOError at once, >0 seconds raises\n"
     "TimeoutError. BrokenPipeError once the consumer closed; OSError(EOWNERDEAD)\n"
     "if it died; OSError(EMSGSIZE) beyond max_message. Releases the GIL; Ctrl-C\n"
     "interrupts a blocked send."},
    {"claim", (PyCFunction)(void (*)(void))Producer_claim, METH_VARARGS | METH_KEYWORDS,
     "claim(n, timeout=None) -> memoryview\n\nReserve n bytes in the ring and return them writable (zero-copy:\n"
     "numpy.frombuffer(mv, dtype) fills them in place). commit() publishes them;\n"
     "the memoryview is released then. Waits as send does."},
    {"commit", (PyCFunction)Producer_commit, METH_VARARGS,
     "commit(n=claimed)\n\nPublish the first n bytes of the open claim and release its memoryview."},
    {"close", (PyCFunction)Producer_close, METH_NOARGS,
     "Detach (an open claim is abandoned). The consumer sees EOF once all producers closed."},
    {"__enter__", (PyCFunction)Ring_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Producer_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ProducerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shm._shm.Producer",
    .tp_basicsize = sizeof(ProducerObject),
    .tp_dealloc = (destructor)Producer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A producer end of a Ring (Ring.producer()).",
    .tp_methods = Producer_methods,
};

/* ---- Consumer ---- */

static int cons_check(ConsumerObject *c) {
	if (!c->attached) {
		PyErr_SetString(PyExc_ValueError, "shm: consumer is closed");
		return -1;
	}
	if (c->busy) {
		PyErr_SetString(PyExc_RuntimeError, "shm: consumer in use by another thread");
		return -1;
	}
	return 0;
}

struct recv_ctx {
	shm_ring_consumer *c;
	void *buf;
	size_t cap;
	const void *msg;
	size_t n;
};
static int64_t op_receive(void *ctx, int64_t ns) {
	struct recv_ctx *s = ctx;
	return shm_ring_receive(s->c, s->buf, s->cap, ns);
}
static int64_t op_read(void *ctx, int64_t ns) {
	struct recv_ctx *s = ctx;
	return shm_ring_read(s->c, &s->msg, &s->n, ns);
}

static PyObject *Consumer_receive(ConsumerObject *c, PyObject *args, PyObject *kw) {
	static char *kwlist[] = {"timeout", NULL};
	PyObject *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:receive", kwlist, &timeout)) return NULL;
	if (cons_check(c) < 0) return NULL;
	if (c->view != NULL) {
		PyErr_SetString(PyExc_RuntimeError, "shm: a read is pending; release it first");
		return NULL;
	}
	if (c->buf == NULL) {
		c->buf = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)shm_ring_max_message(&c->ring->ring));
		if (c->buf == NULL) return NULL;
	}
	struct recv_ctx s = {&c->c, PyByteArray_AS_STRING(c->buf), (size_t)PyByteArray_GET_SIZE(c->buf), NULL, 0};
	int pyerr;
	c->busy = 1;
	int64_t rc = run_blocking(op_receive, &s, timeout, &pyerr);
	c->busy = 0;
	if (pyerr) return NULL;
	if (rc < 0) return ring_err(rc, PyUnicode_AsUTF8(c->ring->name));
	return PyBytes_FromStringAndSize(PyByteArray_AS_STRING(c->buf), (Py_ssize_t)rc);
}

static PyObject *Consumer_read(ConsumerObject *c, PyObject *args, PyObject *kw) {
	static char *kwlist[] = {"timeout", NULL};
	PyObject *timeout = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:read", kwlist, &timeout)) return NULL;
	if (cons_check(c) < 0) return NULL;
	if (c->view != NULL) {
		PyErr_SetString(PyExc_RuntimeError, "shm: a read is pending; release it first");
		return NULL;
	}
	struct recv_ctx s = {&c->c, NULL, 0, NULL, 0};
	int pyerr;
	c->busy = 1;
	int64_t rc = run_blocking(op_read, &s, timeout, &pyerr);
	c->busy = 0;
	if (pyerr) return NULL;
	if (rc < 0) return ring_err(rc, PyUnicode_AsUTF8(c->ring->name));
	c->view = make_view(c->ring, (void *)s.msg, s.n, 1);
	if (c->view == NULL) {
		shm_ring_release(&c->c);
		return NULL;
	}
	Py_INCREF(c->view);
	return c->view;
}

static PyObject *Consumer_release(ConsumerObject *c, PyObject *unused) {
	(void)unused;
	if (cons_check(c) < 0) return NULL;
	if (c->view == NULL) {
		PyErr_SetString(PyExc_RuntimeError, "shm: no pending read");
		return NULL;
	}
	drop_view(&c->view);
	int rc = shm_ring_release(&c->c);
	if (rc < 0) return ring_err(rc, PyUnicode_AsUTF8(c->ring->name));
	Py_RETURN_NONE;
}

static PyObject *Consumer_close(ConsumerObject *c, PyObject *unused) {
	(void)unused;
	if (!c->attached) Py_RETURN_NONE;
	if (c->busy) {
		PyErr_SetString(PyExc_RuntimeError, "shm: consumer in use by another thread");
		return NULL;
	}
	drop_view(&c->view);
	c->attached = 0;
	c->ring->users--;
	int rc = shm_ring_consumer_close(&c->c);
	if (rc < 0) return ring_err(rc, PyUnicode_AsUTF8(c->ring->name));
	Py_RETURN_NONE;
}

static void Consumer_dealloc(ConsumerObject *c) {
	if (c->attached && !c->busy) {
		PyObject *r = Consumer_close(c, NULL);
		if (r == NULL) PyErr_Clear();
		Py_XDECREF(r);
	}
	Py_XDECREF(c->view);
	Py_XDECREF(c->buf);
	Py_XDECREF(c->ring);
	PyObject_Free(c);
}

static PyObject *Consumer_exit(ConsumerObject *c, PyObject *args) {
	(void)args;
	return Consumer_close(c, NULL);
}

static PyMethodDef Consumer_methods[] = {
    {"receive", (PyCFunction)(void (*)(void))Consumer_receive, METH_VARARGS | METH_KEYWORDS,
     "receive(timeout=None) -> bytes\n\nThe next message, copied. timeout None blocks while the ring is empty, 0\n"
     "raises BlockingIOError at once, >0 seconds raises TimeoutError. RingClosed\n"
     "(an OSError and EOFError, errno ENODATA) once every producer closed and the\n"
     "ring is drained; OSError(EOWNERDEAD) once per producer that died;\n"
     "CorruptError (errno EBADMSG) for invalid ring contents. Releases the GIL;\n"
     "Ctrl-C interrupts a blocked receive."},
    {"read", (PyCFunction)(void (*)(void))Consumer_read, METH_VARARGS | METH_KEYWORDS,
     "read(timeout=None) -> memoryview\n\nThe next message in place (zero-copy, read-only), valid until release(),\n"
     "which releases the memoryview. Waits and fails as receive does."},
    {"release", (PyCFunction)Consumer_release, METH_NOARGS, "Give the message from read() back to the ring."},
    {"close", (PyCFunction)Consumer_close, METH_NOARGS, "Detach; producers then get BrokenPipeError."},
    {"__enter__", (PyCFunction)Ring_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Consumer_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ConsumerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shm._shm.Consumer",
    .tp_basicsize = sizeof(ConsumerObject),
    .tp_dealloc = (destructor)Consumer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The consumer end of a Ring (Ring.consumer()).",
    .tp_methods = Consumer_methods,
};

/* ---- module ------------------------------------------------------------- */

static PyObject *mod_token(PyObject *m, PyObject *unused) {
	(void)m;
	(void)unused;
	return PyLong_FromUnsignedLongLong(shm_token());
}

static PyMethodDef module_methods[] = {
    {"token", (PyCFunction)mod_token, METH_NOARGS, "This process's liveness token (SPEC.md LIVE-1)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "shm._shm", "Binding of c/shm.h.", -1, module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__shm(void) {
	if (PyType_Ready(&SegmentType) < 0 || PyType_Ready(&MutexType) < 0 || PyType_Ready(&SemType) < 0 ||
	    PyType_Ready(&RingType) < 0 || PyType_Ready(&ViewType) < 0 || PyType_Ready(&ProducerType) < 0 ||
	    PyType_Ready(&ConsumerType) < 0)
		return NULL;
	PyObject *m = PyModule_Create(&module);
	if (m == NULL) return NULL;
	OwnerDeadError = PyErr_NewExceptionWithDoc(
	    "shm._shm.OwnerDeadError",
	    "The previous owner of a Mutex died holding it; the lock is now held by this process.", NULL, NULL);
	CorruptError = PyErr_NewExceptionWithDoc("shm._shm.CorruptError",
	    "The ring holds something no valid peer writes (OSError, errno EBADMSG).", PyExc_OSError, NULL);
	PyObject *bases = PyTuple_Pack(2, PyExc_OSError, PyExc_EOFError);
	if (bases == NULL) return NULL;
	RingClosed = PyErr_NewExceptionWithDoc("shm._shm.RingClosed",
	    "Every producer closed and the ring is drained (OSError and EOFError, errno ENODATA).", bases, NULL);
	Py_DECREF(bases);
	if (CorruptError == NULL || RingClosed == NULL) return NULL;
	Py_INCREF(&RingType);
	Py_INCREF(&ProducerType);
	Py_INCREF(&ConsumerType);
	if (PyModule_AddObject(m, "Ring", (PyObject *)&RingType) < 0 ||
	    PyModule_AddObject(m, "Producer", (PyObject *)&ProducerType) < 0 ||
	    PyModule_AddObject(m, "Consumer", (PyObject *)&ConsumerType) < 0 ||
	    PyModule_AddObject(m, "CorruptError", CorruptError) < 0 ||
	    PyModule_AddObject(m, "RingClosed", RingClosed) < 0 ||
	    PyModule_AddIntConstant(m, "RING_VERSION", SHM_RING_VERSION) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	Py_INCREF(&SegmentType);
	Py_INCREF(&MutexType);
	Py_INCREF(&SemType);
	if (PyModule_AddObject(m, "Segment", (PyObject *)&SegmentType) < 0 ||
	    PyModule_AddObject(m, "Mutex", (PyObject *)&MutexType) < 0 ||
	    PyModule_AddObject(m, "Semaphore", (PyObject *)&SemType) < 0 ||
	    PyModule_AddObject(m, "OwnerDeadError", OwnerDeadError) < 0 ||
	    PyModule_AddIntConstant(m, "SPEC_VERSION", SHM_SPEC_VERSION) < 0 ||
	    PyModule_AddIntConstant(m, "MUTEX_LAYOUT", SHM_MUTEX_LAYOUT) < 0 ||
	    PyModule_AddIntConstant(m, "SEMAPHORE_LAYOUT", SHM_SEM_LAYOUT) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
