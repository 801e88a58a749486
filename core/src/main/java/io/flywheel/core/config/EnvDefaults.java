package io.flywheel.core.config;

import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * Gives every picocli option of a Flywheel command its environment fallback, following
 * {@link Settings}: option {@code --bootstrap} reads {@code FLYWHEEL_BOOTSTRAP} when the flag is
 * absent, {@code --data-dir} reads {@code FLYWHEEL_DATA_DIR}. The option's own default applies when
 * neither is set. Options without a value (flags such as {@code --decode}) are not read from the
 * environment. Help shows {@code ${DEFAULT-VALUE}} as resolved.
 */
public final class EnvDefaults implements CommandLine.IDefaultValueProvider {

    private final java.util.Map<String, String> env;

    public EnvDefaults() {
        this(System.getenv());
    }

    public EnvDefaults(java.util.Map<String, String> env) {
        this.env = env;
    }

    @Override
    public String defaultValue(ArgSpec argSpec) {
        // Flags (booleans) and help options keep their defaults: an environment variable must not
        // silently switch a command's mode.
        if (argSpec instanceof OptionSpec option && !option.usageHelp() && !option.versionHelp()
                && option.arity().max() > 0) {
            String name = option.longestName().replaceFirst("^-+", "");
            String value = env.get(Settings.envName(name));
            if (value != null) {
                return value;
            }
        }
        return argSpec.defaultValue();
    }
}
