//  linli_frames: one multi-part ZeroMQ message into a fixed frame array.
#include "linli_frames.h"

size_t
linli_frames_recv(void *handle, zmq_msg_t *part, size_t max, bool *too_many)
{
    size_t nparts = 0;
    *too_many = false;
    for (;;) {
        zmq_msg_t extra;
        zmq_msg_t *m = nparts < max ? &part[nparts] : &extra;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, handle, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close(m);
            break;
        }
        bool more = zmq_msg_more(m);
        if (nparts < max) {
            nparts++;
        } else {
            zmq_msg_close(m);
            *too_many = true;
        }
        if (!more)
            break;
    }
    return nparts;
}

void
linli_frames_close(zmq_msg_t *part, size_t n)
{
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&part[i]);
}
