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
	if (PyType_Ready(&SegmentType) < 0 || PyType_Ready(&MutexType) < 0 || PyType_Ready(&SemType) < 0) return NULL;
	PyObject *m = PyModule_Create(&module);
	if (m == NULL) return NULL;
	OwnerDeadError = PyErr_NewExceptionWithDoc(
	    "shm._shm.OwnerDeadError",
	    "The previous owner of a Mutex died holding it; the lock is now held by this process.", NULL, NULL);
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
