"""PyTorch's side of the whole-model sections: the references' SVF baseline, trained their way."""

from benchmarks.svf_tf_side import random_batch


def torch_model(variant, threads):
    """(model, backbone stages) of the PyTorch SVF baseline, on `threads` intra-op threads.

    The model is tests/torch_import/torch_reference.py's `Baseline` on its
    deep-stem ResNet-50 with torchvision's dilation (the SVF authors'
    `model/aspp.py` on `model/module/resnet.py`), random weights (seed 0).
    `down_query` and the backbone are frozen; for SVF the convs of layer2-4
    are factored (`FactoredConv`), only S trains.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    from tests.torch_import import torch_reference as reference

    class FactoredConv(nn.Module):
        """conv(x, V) * S, then the 1x1 conv by U; W = U diag(S) V^T, U and V frozen."""

        def __init__(self, conv):
            super().__init__()
            u, s, vt = torch.linalg.svd(conv.weight.detach().flatten(1), full_matrices=False)
            # contiguous: LAPACK's column-major factors would send the convs off oneDNN.
            conv.weight = nn.Parameter(vt.reshape(-1, *conv.weight.shape[1:]).contiguous(),
                                       requires_grad=False)
            self.conv, self.s = conv, nn.Parameter(s)
            self.register_buffer("u", u[:, :, None, None].contiguous())

        def forward(self, x):
            return F.conv2d(self.conv(x) * self.s[:, None, None], self.u)

    torch.set_num_threads(threads)
    resnet = reference.set_resnet_dilation(reference.DeepStemResNet50(), "torchvision")
    stages = reference.randomize(resnet, 0).stages()
    net = reference.Baseline(stages, vgg=False, shot=1)
    for module in (*stages, net.down_query):
        module.requires_grad_(False)
    if variant == "svf":
        for module in [m for stage in stages[2:] for m in stage.modules()]:
            for name, child in module.named_children():
                if isinstance(child, nn.Conv2d):
                    setattr(module, name, FactoredConv(child))
    return net, stages


def torch_functions(variant, size, batch, threads):
    """(train step, eval forward) of `torch_model`'s baseline, as the references train it.

    Backbone BatchNorm in eval mode (`fix_bn`); SGD with momentum and weight
    decay, cross-entropy ignoring 255.
    """
    import torch
    import torch.nn.functional as F

    net, stages = torch_model(variant, threads)
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.0025,
                                momentum=0.9, weight_decay=1e-4)
    data = {k: torch.from_numpy(v) for k, v in random_batch(size, batch).items()}
    query = data["query_image"].permute(0, 3, 1, 2).contiguous()
    supports = data["support_images"].permute(0, 1, 4, 2, 3).contiguous()
    masks, target = data["support_masks"], data["query_mask"].long()

    def set_mode(training):
        net.train(training)
        for stage in stages:
            stage.eval()

    def train():
        set_mode(True)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(query, supports, masks), target, ignore_index=255)
        loss.backward()
        optimizer.step()
        return loss.item()

    def evaluate():
        set_mode(False)
        with torch.inference_mode():
            return net(query, supports, masks).numpy()

    return train, evaluate
