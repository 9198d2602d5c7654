/** A UUID in its canonical form: hyphenated, lower-case hex (the form this code issues and stores). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
