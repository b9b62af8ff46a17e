package reelsearch.opensearch;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.opensearch.Version;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.ExtensiblePlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.plugins.PluginInfo;

/**
 * A single-node OpenSearch 3.6 for development and tests, embedded without Bootstrap:
 * the modules and plugins (k-NN, neural-search) are classpath plugins.
 *
 * <pre>
 * java -cp ... reelsearch.opensearch.ReelsearchNode HOME_DIR HTTP_PORT [TRANSPORT_PORT_RANGE]
 * </pre>
 *
 * HOME_DIR becomes path.home; data and logs go to HOME_DIR/data and HOME_DIR/logs (which
 * holds http.ports once HTTP is up). System properties: reelsearch.cluster.name,
 * reelsearch.node.name, reelsearch.seed.hosts (comma-separated transport addresses of the
 * other nodes: the node joins a cluster instead of running alone),
 * reelsearch.cluster.managers (comma-separated names of the nodes that vote in the first
 * election; default: this node alone),
 * reelsearch.plugins (comma-separated plugin class names, replaces the default list;
 * {@link KnnEngineGuardPlugin} is always added), reelsearch.knn.guard=false.
 */
public final class ReelsearchNode extends Node {

    /** Plugin classes, loaded by name so that the launcher compiles against core only. */
    static final List<String> DEFAULT_PLUGINS = List.of(
        "org.opensearch.transport.Netty4ModulePlugin",
        "org.opensearch.analysis.common.CommonAnalysisModulePlugin",
        "org.opensearch.painless.PainlessModulePlugin",
        "org.opensearch.index.mapper.MapperExtrasModulePlugin",
        "org.opensearch.index.reindex.ReindexModulePlugin",
        "org.opensearch.knn.plugin.KNNPlugin",
        "org.opensearch.neuralsearch.plugin.NeuralSearch"
    );

    private ReelsearchNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
        super(env, describe(plugins), true);
    }

    /** Describe classpath plugins the way 3.x's Node takes them (as its MockNode does). */
    private static List<PluginInfo> describe(Collection<Class<? extends Plugin>> plugins) {
        List<PluginInfo> infos = new ArrayList<>();
        for (Class<? extends Plugin> plugin : plugins) {
            infos.add(new PluginInfo(plugin.getName(), "classpath plugin", "NA", Version.CURRENT,
                "21", plugin.getName(), null, List.of(), false));
        }
        return infos;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: ReelsearchNode HOME_DIR HTTP_PORT [TRANSPORT_PORT_RANGE]");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath().normalize();
        int httpPort = Integer.parseInt(args[1]);
        String transportPorts = args.length > 2 ? args[2] : "9300-9399";
        String clusterName = System.getProperty("reelsearch.cluster.name", "reelsearch-dev");
        String nodeName = System.getProperty("reelsearch.node.name", "reelsearch-node-1");

        Path config = home.resolve("config");
        Path data = home.resolve("data");
        Path logs = home.resolve("logs");
        Files.createDirectories(config);
        Files.createDirectories(data);
        Files.createDirectories(logs);

        Settings.Builder builder = Settings.builder()
            .put("cluster.name", clusterName)
            .put("node.name", nodeName)
            .put("path.home", home.toString())
            .put("path.data", data.toString())
            .put("path.logs", logs.toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", transportPorts)
            .put("node.portsfile", true)
            .put("cluster.routing.allocation.disk.threshold_enabled", false);
        String seeds = System.getProperty("reelsearch.seed.hosts", "");
        if (seeds.isBlank()) {
            builder.put("discovery.type", "single-node");
        } else {
            builder.putList("discovery.seed_hosts", List.of(seeds.split("\\s*,\\s*")));
            String managers = System.getProperty("reelsearch.cluster.managers", nodeName);
            builder.putList("cluster.initial_cluster_manager_nodes",
                List.of(managers.split("\\s*,\\s*")));
        }
        Settings settings = builder.build();

        // before the first logger: log4j2.properties uses OpenSearch's %node_name converter
        LogConfigurator.setNodeName(nodeName);
        Logger logger = LogManager.getLogger(ReelsearchNode.class);
        List<Class<? extends Plugin>> plugins = loadPlugins();
        preloadPainlessExtensions(logger);

        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), config, () -> nodeName);
        ReelsearchNode node = new ReelsearchNode(env, plugins);

        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (Exception e) {
                logger.warn("error while closing the node", e);
            } finally {
                closed.countDown();
                LogManager.shutdown();
            }
        }, "reelsearch-node-shutdown"));

        try {
            node.start();
        } catch (Throwable t) {
            // e.g. a port already bound: exit instead of idling on the node's non-daemon threads
            logger.error("node failed to start", t);
            System.exit(1);
        }
        logger.info("reelsearch node started: http://127.0.0.1:{} plugins={}", httpPort, plugins.size());
        closed.await();
    }

    @SuppressWarnings("unchecked")
    private static List<Class<? extends Plugin>> loadPlugins() throws ClassNotFoundException {
        String names = System.getProperty("reelsearch.plugins");
        List<String> classNames = names == null || names.isBlank()
            ? DEFAULT_PLUGINS
            : List.of(names.split("\\s*,\\s*"));
        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        for (String name : classNames) {
            plugins.add((Class<? extends Plugin>) Class.forName(name).asSubclass(Plugin.class));
        }
        plugins.add(KnnEngineGuardPlugin.class);
        return plugins;
    }

    /**
     * Classpath plugins get no extensions: PluginsService calls loadExtensions only for
     * plugins installed in directories. PainlessPlugin keeps its allowlists in a static
     * map, so loading the extensions (k-NN's KNNAllowlistExtension: cosineSimilarity,
     * l2Squared, ...) once on a throwaway instance before the node starts makes them
     * visible to the node's own instance. Best effort: failures only cost those functions.
     */
    private static void preloadPainlessExtensions(Logger logger) {
        try {
            Class<?> painless = Class.forName("org.opensearch.painless.PainlessModulePlugin");
            ExtensiblePlugin plugin = (ExtensiblePlugin) painless.getConstructor().newInstance();
            ClassLoader loader = ReelsearchNode.class.getClassLoader();
            plugin.loadExtensions(new ExtensiblePlugin.ExtensionLoader() {
                @Override
                public <T> List<T> loadExtensions(Class<T> type) {
                    List<T> found = new ArrayList<>();
                    ServiceLoader.load(type, loader).forEach(found::add);
                    return found;
                }
            });
        } catch (Throwable t) {
            logger.warn("painless extensions not loaded (k-NN painless functions unavailable)", t);
        }
    }
}
