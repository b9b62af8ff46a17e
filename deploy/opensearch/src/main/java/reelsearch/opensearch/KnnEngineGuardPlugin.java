package reelsearch.opensearch;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.opensearch.action.ActionRequest;
import org.opensearch.action.admin.indices.create.CreateIndexRequest;
import org.opensearch.action.admin.indices.mapping.put.PutMappingRequest;
import org.opensearch.action.admin.indices.template.put.PutComponentTemplateAction;
import org.opensearch.action.admin.indices.template.put.PutComposableIndexTemplateAction;
import org.opensearch.action.admin.indices.template.put.PutIndexTemplateRequest;
import org.opensearch.action.support.ActionFilter;
import org.opensearch.action.support.ActionFilterChain;
import org.opensearch.cluster.metadata.Template;
import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.action.ActionResponse;
import org.opensearch.core.common.bytes.BytesArray;
import org.opensearch.plugins.ActionPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.tasks.Task;

/**
 * This node has no k-NN native libraries. A knn_vector field on the faiss or nmslib engine
 * (the default when "engine" is left out, in 2.x and 3.x) makes the first write die with an
 * UnsatisfiedLinkError in a write thread: the request hangs and the shard fails over and
 * over. This filter rejects such mappings up front with a 400 instead: every knn_vector
 * field must say "method": {"engine": "lucene", ...}. Switch it off with
 * -Dreelsearch.knn.guard=false.
 */
public final class KnnEngineGuardPlugin extends Plugin implements ActionPlugin {

    @Override
    public List<ActionFilter> getActionFilters() {
        if ("false".equals(System.getProperty("reelsearch.knn.guard"))) {
            return List.of();
        }
        return List.of(new Guard());
    }

    static final class Guard implements ActionFilter {
        @Override
        public int order() {
            return Integer.MIN_VALUE;
        }

        @Override
        public <Request extends ActionRequest, Response extends ActionResponse> void apply(
            Task task, String action, Request request, ActionListener<Response> listener,
            ActionFilterChain<Request, Response> chain) {
            try {
                List<String> problems = new ArrayList<>();
                for (String mapping : mappingsOf(request)) {
                    if (mapping != null && !mapping.isEmpty()) {
                        check(XContentHelper.convertToMap(new BytesArray(mapping), false).v2(), "", problems);
                    }
                }
                if (!problems.isEmpty()) {
                    listener.onFailure(new IllegalArgumentException(
                        "this development node has no k-NN native libraries (faiss/nmslib): "
                            + String.join("; ", problems)
                            + ". Set \"method\": {\"name\": \"hnsw\", \"engine\": \"lucene\", ...} on every knn_vector field."));
                    return;
                }
            } catch (RuntimeException e) {
                // unparsable mappings: let OpenSearch itself report them
            }
            chain.proceed(task, action, request, listener);
        }
    }

    static List<String> mappingsOf(ActionRequest request) {
        List<String> out = new ArrayList<>();
        if (request instanceof CreateIndexRequest) {
            out.add(((CreateIndexRequest) request).mappings());
        } else if (request instanceof PutMappingRequest) {
            out.add(((PutMappingRequest) request).source());
        } else if (request instanceof PutIndexTemplateRequest) {
            out.add(((PutIndexTemplateRequest) request).mappings());
        } else if (request instanceof PutComposableIndexTemplateAction.Request) {
            var template = ((PutComposableIndexTemplateAction.Request) request).indexTemplate();
            addTemplate(out, template == null ? null : template.template());
        } else if (request instanceof PutComponentTemplateAction.Request) {
            var template = ((PutComponentTemplateAction.Request) request).componentTemplate();
            addTemplate(out, template == null ? null : template.template());
        }
        return out;
    }

    private static void addTemplate(List<String> out, Template template) {
        if (template != null && template.mappings() != null) {
            out.add(template.mappings().string());
        }
    }

    @SuppressWarnings("unchecked")
    static void check(Object node, String path, List<String> problems) {
        if (node instanceof Map) {
            Map<String, Object> map = (Map<String, Object>) node;
            if ("knn_vector".equals(map.get("type"))) {
                String field = path.isEmpty() ? "?" : path;
                Object method = map.get("method");
                Object engine = method instanceof Map ? ((Map<String, Object>) method).get("engine") : null;
                if (map.containsKey("model_id")) {
                    problems.add("knn_vector field [" + field + "] uses a trained model (model_id)");
                } else if (!"lucene".equals(engine)) {
                    problems.add("knn_vector field [" + field + "] has engine ["
                        + (engine == null ? "default: faiss" : engine) + "]");
                }
            }
            for (Map.Entry<String, Object> e : map.entrySet()) {
                if ("properties".equals(e.getKey()) && e.getValue() instanceof Map) {
                    for (Map.Entry<String, Object> f : ((Map<String, Object>) e.getValue()).entrySet()) {
                        check(f.getValue(), path.isEmpty() ? f.getKey() : path + "." + f.getKey(), problems);
                    }
                } else {
                    check(e.getValue(), path, problems);
                }
            }
        } else if (node instanceof List) {
            for (Object item : (List<Object>) node) {
                check(item, path, problems);
            }
        }
    }
}
