//  linli_frames: read one multi-part ZeroMQ message into a fixed array of
//  frames without blocking — the loop the broker, the worker and the client
//  each need to drain their sockets.
#ifndef LINLI_FRAMES_H
#define LINLI_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

//  Receive the next message on handle (a libzmq socket) into part[0..max-1];
//  frames beyond max are read and dropped, and *too_many says so. Returns the
//  frames kept (0 when nothing was waiting); the caller closes each of them.
size_t linli_frames_recv(void *handle, zmq_msg_t *part, size_t max, bool *too_many);

//  Close the first n frames.
void linli_frames_close(zmq_msg_t *part, size_t n);

#endif
