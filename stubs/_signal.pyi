# The C module behind ``signal`` (typeshed has no stub for it): the same names, as plain
# ints, without the enum wrapping that costs spamdrill-deliver ~3 ms per delivery.
from signal import SIG_DFL as SIG_DFL
from signal import SIG_IGN as SIG_IGN
from signal import SIGHUP as SIGHUP
from signal import SIGINT as SIGINT
from signal import SIGKILL as SIGKILL
from signal import SIGPIPE as SIGPIPE
from signal import SIGTERM as SIGTERM
from signal import SIGXFSZ as SIGXFSZ
from signal import signal as signal
from signal import ITIMER_REAL as ITIMER_REAL
from signal import SIG_BLOCK as SIG_BLOCK
from signal import SIG_SETMASK as SIG_SETMASK
from signal import SIGALRM as SIGALRM
from signal import pthread_sigmask as pthread_sigmask
from signal import setitimer as setitimer
