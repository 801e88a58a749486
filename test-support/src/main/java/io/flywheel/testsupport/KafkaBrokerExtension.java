package io.flywheel.testsupport;

import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * Gives tests a real {@link KafkaBroker}: declare {@code @ExtendWith(KafkaBrokerExtension.class)}
 * and take a {@code KafkaBroker} parameter (constructor, lifecycle or test method). The broker
 * starts on first use and is shared by every test class of the run, in the root extension store,
 * which closes it when the run ends. Tests keep apart through their own topics and groups.
 */
public final class KafkaBrokerExtension implements ParameterResolver {

    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(KafkaBrokerExtension.class);

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        return parameter.getParameter().getType() == KafkaBroker.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
        return context.getRoot().getStore(NAMESPACE).computeIfAbsent("broker", key -> {
            try {
                return KafkaBroker.start();
            } catch (Exception e) {
                throw new IllegalStateException("cannot start the test broker", e);
            }
        }, KafkaBroker.class);
    }
}
