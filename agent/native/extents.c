/*
 * The few Linux file calls Node's fs module lacks and a thin block store needs:
 * fallocate(PUNCH_HOLE) so TRIM and WRITE_ZEROES give space back, and
 * lseek(SEEK_DATA / SEEK_HOLE) so allocated extents can be found without reading holes.
 * Each call runs on the libuv thread pool, like Node's own fs calls, and returns a Promise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { OP_PUNCH_HOLE, OP_SEEK_DATA, OP_SEEK_HOLE } op_kind;

typedef struct {
  op_kind kind;
  int fd;
  int64_t offset;
  int64_t length;
  int64_t result;
  int err;
  napi_deferred deferred;
  napi_async_work work;
} op_t;

static void execute(napi_env env, void *data) {
  (void)env;
  op_t *op = data;
  op->err = 0;
  switch (op->kind) {
    case OP_PUNCH_HOLE:
      if (fallocate(op->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, op->offset, op->length) != 0) {
        op->err = errno;
      }
      break;
    case OP_SEEK_DATA:
    case OP_SEEK_HOLE: {
      off_t r = lseek(op->fd, op->offset, op->kind == OP_SEEK_DATA ? SEEK_DATA : SEEK_HOLE);
      if (r < 0) {
        /* ENXIO: no data (or hole) at or after offset; callers get -1, not an error. */
        if (errno == ENXIO) op->result = -1;
        else op->err = errno;
      } else {
        op->result = r;
      }
      break;
    }
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  op_t *op = data;
  napi_value value;
  if (status != napi_ok) {
    napi_value msg;
    napi_create_string_utf8(env, "strata_native: async work failed", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &value);
    napi_reject_deferred(env, op->deferred, value);
  } else if (op->err != 0) {
    napi_value msg, code;
    napi_create_string_utf8(env, strerror(op->err), NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &value);
    napi_create_int32(env, op->err, &code);
    napi_set_named_property(env, value, "errno", code);
    napi_reject_deferred(env, op->deferred, value);
  } else {
    napi_create_int64(env, op->result, &value);
    napi_resolve_deferred(env, op->deferred, value);
  }
  napi_delete_async_work(env, op->work);
  free(op);
}

static napi_value start(napi_env env, napi_callback_info info, op_kind kind, size_t want) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < want) {
    napi_throw_type_error(env, NULL, "strata_native: missing arguments");
    return NULL;
  }
  int32_t fd;
  int64_t offset = 0, length = 0;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      (want > 2 && napi_get_value_int64(env, argv[2], &length) != napi_ok)) {
    napi_throw_type_error(env, NULL, "strata_native: fd, offset and length must be numbers");
    return NULL;
  }
  op_t *op = calloc(1, sizeof(op_t));
  if (op == NULL) {
    napi_throw_error(env, NULL, "strata_native: out of memory");
    return NULL;
  }
  op->kind = kind;
  op->fd = fd;
  op->offset = offset;
  op->length = length;
  napi_value promise, name;
  napi_create_promise(env, &op->deferred, &promise);
  napi_create_string_utf8(env, "strata_native", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, op, &op->work);
  napi_queue_async_work(env, op->work);
  return promise;
}

static napi_value punch_hole(napi_env env, napi_callback_info info) { return start(env, info, OP_PUNCH_HOLE, 3); }
static napi_value seek_data(napi_env env, napi_callback_info info) { return start(env, info, OP_SEEK_DATA, 2); }
static napi_value seek_hole(napi_env env, napi_callback_info info) { return start(env, info, OP_SEEK_HOLE, 2); }

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"punchHole", NULL, punch_hole, NULL, NULL, NULL, napi_default, NULL},
    {"seekData", NULL, seek_data, NULL, NULL, NULL, napi_default, NULL},
    {"seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
