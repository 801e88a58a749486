package io.flywheel.core.cli;

/** Bad input from the user: the message says what to fix; the command exits with code 2. */
public final class UsageError extends RuntimeException {
    public UsageError(String message) {
        super(message);
    }

    public UsageError(String message, Throwable cause) {
        super(message, cause);
    }
}
