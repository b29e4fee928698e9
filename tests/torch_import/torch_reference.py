"""Small PyTorch models with the references' module names, written for these tests.

Their state dict keys are the references' (BAM/PFENet `model/*.py`): the deep-stem
ResNet-50 of `resnet50_v2.pth` (conv1..3/bn1..3, layer1..4 of torchvision
Bottlenecks with the stride on conv2, fc), VGG16-BN (`features`, a stand-in
`classifier`), and the few-shot models that hold the backbone as layer0..4
(PSPNet with ppm/cls and a second `encoder` registration, the SVF baseline,
PFENet, BAM). The forward passes follow each reference model's `forward`
in eval mode; they are the references against which the converted
Keras models are compared. Import only after `pytest.importorskip("torch")`.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M")
VGG_STAGE_BOUNDS = (0, 7, 14, 24, 34, 43)
# Dilation of each block's 3x3 conv in layer3 and layer4 (D1 BAM `model/PSPNet.py`,
# D2 the SVF code's `model/module/resnet.py`).
RESNET_DILATIONS = {"all_blocks": ((2,) * 6, (4,) * 3),
                    "torchvision": ((1,) + (2,) * 5, (2,) + (4,) * 2)}
REDUCE_DIM = 256


def resize(x, size):
    """Bilinear resize with align_corners=True, the references' only in-model resize."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def to_nhwc(x):
    """A torch NCHW tensor as a float32 numpy NHWC array."""
    return x.detach().permute(0, 2, 3, 1).float().numpy()


class Bottleneck(nn.Module):
    """torchvision's bottleneck: 1x1, 3x3 (stride and dilation here), 1x1, expansion 4."""

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class DeepStemResNet50(nn.Module):
    """PSPNet's resnet50_v2 at output stride 8, named as in `resnet50_v2.pth`."""

    def __init__(self, dilation="all_blocks", num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(128)
        self.relu3 = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        dilations3, dilations4 = RESNET_DILATIONS[dilation]
        stages = ((64, 1, (1,) * 3), (128, 2, (1,) * 4), (256, 1, dilations3),
                  (512, 1, dilations4))
        inplanes = 128
        for index, (planes, stride, dilations) in enumerate(stages, start=1):
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4))
            blocks = [Bottleneck(inplanes, planes, stride, dilations[0], downsample)]
            blocks += [Bottleneck(planes * 4, planes, 1, d) for d in dilations[1:]]
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
            inplanes = planes * 4
        self.fc = nn.Linear(2048, num_classes)

    def stages(self):
        """[layer0, ..., layer4], layer0 the references' stem Sequential."""
        layer0 = nn.Sequential(self.conv1, self.bn1, self.relu1, self.conv2, self.bn2,
                               self.relu2, self.conv3, self.bn3, self.relu3, self.maxpool)
        return [layer0, self.layer1, self.layer2, self.layer3, self.layer4]


class VGG16BN(nn.Module):
    """torchvision's vgg16_bn features (ceil-mode pools) and a small stand-in classifier."""

    def __init__(self, num_classes=10):
        super().__init__()
        layers, channels = [], 3
        for entry in VGG16_CONFIG:
            if entry == "M":
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
            else:
                layers += [nn.Conv2d(channels, entry, 3, padding=1), nn.BatchNorm2d(entry),
                           nn.ReLU()]
                channels = entry
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(512, num_classes))

    def stages(self):
        """layer0..layer4 as PFENet/BAM cut them: features[0:7], ... re-indexed from 0."""
        bounds = VGG_STAGE_BOUNDS
        return [nn.Sequential(*[self.features[i] for i in range(bounds[s], bounds[s + 1])])
                for s in range(5)]


class Backbone(nn.Module):
    """layer0..layer4 as the few-shot references register them."""

    def __init__(self, stages):
        super().__init__()
        for index, stage in enumerate(stages):
            setattr(self, f"layer{index}", stage)

    def forward(self, x):
        features = []
        for index in range(5):
            x = getattr(self, f"layer{index}")(x)
            features.append(x)
        return features


class PPM(nn.Module):
    """Pyramid pooling: per bin, adaptive pool, 1x1 conv, BN, ReLU, resize; concat with x."""

    def __init__(self, in_dim, bins=(1, 2, 3, 6)):
        super().__init__()
        reduction = in_dim // len(bins)
        self.features = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(in_dim, reduction, 1, bias=False),
                          nn.BatchNorm2d(reduction), nn.ReLU())
            for b in bins)

    def forward(self, x):
        size = x.shape[-2:]
        return torch.cat([x, *(resize(branch(x), size) for branch in self.features)], 1)


def pspnet_classifier(in_dim, classes):
    """3x3 conv (2 in_dim -> 512, no bias), BN, ReLU, Dropout2d, 1x1 conv with bias."""
    return nn.Sequential(nn.Conv2d(in_dim * 2, 512, 3, padding=1, bias=False),
                         nn.BatchNorm2d(512), nn.ReLU(), nn.Dropout2d(0.1),
                         nn.Conv2d(512, classes, 1))


class PSPNet(nn.Module):
    """BAM's stage-1 model: layer0..4 (also registered as `encoder`), ppm, cls."""

    def __init__(self, stages, fea_dim, classes):
        super().__init__()
        for index, stage in enumerate(stages):
            setattr(self, f"layer{index}", stage)
        self.encoder = nn.Sequential(*stages)
        self.ppm = PPM(fea_dim)
        self.cls = pspnet_classifier(fea_dim, classes)

    def head(self, layer4):
        return self.cls(self.ppm(layer4))

    def forward(self, x):
        return resize(self.head(self.encoder(x)), x.shape[-2:])


def projection(fea_dim):
    """down_query / down_supp: 1x1 conv (no bias), ReLU, Dropout2d(0.5)."""
    return nn.Sequential(nn.Conv2d(fea_dim, REDUCE_DIM, 1, bias=False), nn.ReLU(),
                         nn.Dropout2d(0.5))


def conv_relu(in_dim, out_dim=REDUCE_DIM, kernel=1):
    return nn.Sequential(nn.Conv2d(in_dim, out_dim, kernel, padding=kernel // 2, bias=False),
                         nn.ReLU())


def residual_pair():
    """Two 3x3 convs + ReLU (res2 / beta_conv)."""
    return nn.Sequential(*conv_relu(REDUCE_DIM, kernel=3), *conv_relu(REDUCE_DIM, kernel=3))


def few_shot_classifier():
    """3x3 conv (no bias), ReLU, Dropout2d(0.1), 1x1 conv -> 2 with bias."""
    return nn.Sequential(nn.Conv2d(REDUCE_DIM, REDUCE_DIM, 3, padding=1, bias=False), nn.ReLU(),
                         nn.Dropout2d(0.1), nn.Conv2d(REDUCE_DIM, 2, 1))


class ASPP(nn.Module):
    """Branches layer6_0 (global) .. layer6_4 (dilation 18), convs with bias, no BN."""

    def __init__(self, channels=REDUCE_DIM):
        super().__init__()
        self.layer6_0 = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU())
        self.layer6_1 = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU())
        for index, rate in enumerate((6, 12, 18), start=2):
            setattr(self, f"layer6_{index}", nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=rate, dilation=rate), nn.ReLU()))

    def forward(self, x):
        pooled = self.layer6_0(x.mean((2, 3), keepdim=True)).expand(-1, -1, *x.shape[-2:])
        return torch.cat([pooled, *(getattr(self, f"layer6_{i}")(x) for i in range(1, 5))], 1)


def masked_average(features, mask):
    """Weighted_GAP: sum(f * m) / (sum(m) + 0.0005) over the map."""
    return (features * mask).sum((2, 3), keepdim=True) / (mask.sum((2, 3), keepdim=True)
                                                          + 0.0005)


def prior_mask(query4, support4, foreground, out_size):
    """Max cosine similarity to the masked support layer4, min-max normalised per sample."""
    support = support4 * resize(foreground, support4.shape[-2:])
    batch, _, height, width = query4.shape
    q, s = query4.flatten(2), support.flatten(2)
    similarity = torch.einsum("bcm,bcn->bmn", s, q) / (
        s.norm(dim=1)[:, :, None] * q.norm(dim=1)[:, None, :] + 1e-7)
    prior = similarity.max(1).values
    low, high = prior.min(1, keepdim=True).values, prior.max(1, keepdim=True).values
    prior = (prior - low) / (high - low + 1e-7)
    return resize(prior.view(batch, 1, height, width), out_size)


def cosine_gram(features):
    """C x C cosine similarity of the channels' spatial maps."""
    flat = features.flatten(2)
    norms = flat.norm(dim=2, keepdim=True)
    return flat @ flat.transpose(1, 2) / (norms @ norms.transpose(1, 2) + 1e-7)


class FewShotModel(nn.Module):
    """The part shared by the SVF baseline, PFENet and BAM's meta learner (`PFENet.forward`)."""

    def __init__(self, stages, vgg):
        super().__init__()
        for index, stage in enumerate(stages):
            setattr(self, f"layer{index}", stage)
        self.vgg = vgg
        fea_dim = 512 + 256 if vgg else 1024 + 512
        self.down_query = projection(fea_dim)
        self.down_supp = projection(fea_dim)

    def trunk(self, x):
        x0 = self.layer0(x)
        x1 = self.layer1(x0)
        x2 = self.layer2(x1)
        return x2, self.layer3(x2)

    def episode(self, query, supports, masks):
        """Query features, per-shot prototypes, priors and layer2 features, and query layer4."""
        q2, q3 = self.trunk(query)
        q4 = self.layer4(q3)
        if self.vgg:
            q2 = resize(q2, q3.shape[-2:])
        query_feat = self.down_query(torch.cat([q3, q2], 1))
        prototypes, priors, support_layer2 = [], [], []
        for shot in range(supports.shape[1]):
            foreground = (masks[:, shot] == 1).to(query.dtype).unsqueeze(1)
            s2, s3 = self.trunk(supports[:, shot])
            mask3 = resize(foreground, s3.shape[-2:])
            s4 = self.layer4(s3 * mask3)
            if self.vgg:
                s2 = resize(s2, s3.shape[-2:])
            prototypes.append(masked_average(self.down_supp(torch.cat([s3, s2], 1)), mask3))
            priors.append(prior_mask(q4, s4, foreground, q3.shape[-2:]))
            support_layer2.append(s2)
        return query_feat, prototypes, priors, q2, support_layer2, q4


class MetaLearner(FewShotModel):
    """init_merge, ASPP_meta, res1_meta, res2_meta, cls_meta (SVF baseline, BAM)."""

    def __init__(self, stages, vgg):
        super().__init__(stages, vgg)
        self.init_merge = conv_relu(2 * REDUCE_DIM + 1)
        self.ASPP_meta = ASPP()
        self.res1_meta = conv_relu(5 * REDUCE_DIM)
        self.res2_meta = residual_pair()
        self.cls_meta = few_shot_classifier()

    def meta_logits(self, query_feat, prototype, prior):
        merged = self.init_merge(torch.cat([query_feat, prototype.expand_as(query_feat),
                                            prior], 1))
        x = self.res1_meta(self.ASPP_meta(merged))
        return self.cls_meta(self.res2_meta(x) + x)


class Baseline(MetaLearner):
    """The SVF authors' baseline: shots summed; `kshot_rw` built for shot > 1, unused."""

    def __init__(self, stages, vgg, shot):
        super().__init__(stages, vgg)
        if shot > 1:
            self.kshot_rw = nn.Sequential(nn.Conv2d(shot, 2, 1), nn.ReLU(), nn.Conv2d(2, shot, 1))

    def forward(self, query, supports, masks):
        query_feat, prototypes, priors, *_ = self.episode(query, supports, masks)
        logits = self.meta_logits(query_feat, sum(prototypes), sum(priors))
        return resize(logits, query.shape[-2:])


class PFENet(FewShotModel):
    """PFENet: shots averaged, feature enrichment over `bins`, res1/res2/cls."""

    def __init__(self, stages, vgg, bins):
        super().__init__(stages, vgg)
        self.bins = bins
        self.init_merge = nn.ModuleList(conv_relu(2 * REDUCE_DIM + 1) for _ in bins)
        self.alpha_conv = nn.ModuleList(conv_relu(2 * REDUCE_DIM) for _ in bins[1:])
        self.beta_conv = nn.ModuleList(residual_pair() for _ in bins)
        self.inner_cls = nn.ModuleList(few_shot_classifier() for _ in bins)
        self.res1 = conv_relu(len(bins) * REDUCE_DIM)
        self.res2 = residual_pair()
        self.cls = few_shot_classifier()

    def forward(self, query, supports, masks):
        query_feat, prototypes, priors, *_ = self.episode(query, supports, masks)
        prototype = sum(prototypes) / len(prototypes)
        prior = sum(priors) / len(priors)
        stored, aux = [], []
        for index, size in enumerate(self.bins):
            x = torch.cat([F.adaptive_avg_pool2d(query_feat, size),
                           prototype.expand(-1, -1, size, size), resize(prior, (size, size))], 1)
            x = self.init_merge[index](x)
            if index:
                previous = resize(stored[-1], (size, size))
                x = self.alpha_conv[index - 1](torch.cat([x, previous], 1)) + x
            x = self.beta_conv[index](x) + x
            aux.append(resize(self.inner_cls[index](x), query.shape[-2:]))
            stored.append(resize(x, query_feat.shape[-2:]))
        x = self.res1(torch.cat(stored, 1))
        logits = self.cls(self.res2(x) + x)
        return resize(logits, query.shape[-2:]), aux


class BAM(MetaLearner):
    """BAM in eval mode: meta learner, frozen base learner, Gram-weighted ensemble."""

    def __init__(self, stages, vgg, shot, base_classes):
        super().__init__(stages, vgg)
        fea_dim = 512 if vgg else 2048
        self.learner_base = nn.Sequential(PPM(fea_dim), pspnet_classifier(fea_dim,
                                                                          base_classes + 1))
        self.gram_merge = nn.Conv2d(2, 1, 1, bias=False)
        self.cls_merge = nn.Conv2d(2, 1, 1, bias=False)
        if shot > 1:
            self.kshot_rw = nn.Sequential(nn.Conv2d(shot, 2, 1), nn.ReLU(), nn.Conv2d(2, shot, 1))

    def shot_weights(self, distances):
        """Softmax weights over shots from the sorted distances (ones for 1 shot)."""
        if distances.shape[1] == 1:
            return torch.ones_like(distances)
        ascending, order = distances.sort(1)
        weights = self.kshot_rw(ascending[:, :, None, None])[:, :, 0, 0]
        return torch.softmax(weights.gather(1, order.argsort(1)), 1)

    def forward(self, query, supports, masks):
        query_feat, prototypes, priors, q2, support_layer2, q4 = self.episode(
            query, supports, masks)
        query_gram = cosine_gram(q2)
        channels = q2.shape[1]
        distances = torch.stack([(query_gram - cosine_gram(s2)).flatten(1).norm(dim=1) / channels
                                 for s2 in support_layer2], 1)
        weights = self.shot_weights(distances)
        est_val = (weights * distances).sum(1)
        prototype = sum(w[:, None, None, None] * p for w, p in zip(weights.T, prototypes,
                                                                  strict=True))
        prior = sum(w[:, None, None, None] * p for w, p in zip(weights.T, priors, strict=True))
        meta = self.meta_logits(query_feat, prototype, prior)
        base = self.learner_base(q4)
        meta_soft, base_soft = meta.softmax(1), base.softmax(1)
        est_map = est_val[:, None, None, None].expand_as(meta_soft[:, :1])
        background = self.gram_merge(torch.cat([meta_soft[:, :1], est_map], 1))
        foreground = self.gram_merge(torch.cat([meta_soft[:, 1:], est_map], 1))
        merged = self.cls_merge(torch.cat([background, base_soft[:, 1:].sum(1, keepdim=True)],
                                          1))
        size = query.shape[-2:]
        return (resize(torch.cat([merged, foreground], 1), size), resize(meta, size),
                resize(base, size))


def set_resnet_dilation(net, dilation):
    """Turns a `DeepStemResNet50` into the other dilation pattern, as the references do.

    PFENet/BAM build a ResNet and then rewrite the stride, dilation and
    padding of its layer3/layer4 convs; the weights stay the same.
    """
    for stage, dilations in zip((net.layer3, net.layer4), RESNET_DILATIONS[dilation],
                                strict=True):
        for block, rate in zip(stage, dilations, strict=True):
            block.conv2.dilation, block.conv2.padding = (rate, rate), (rate, rate)
    return net


def randomize(module, seed):
    """Random weights and BatchNorm statistics everywhere, at scales that keep activations O(1).

    Convs: He-normal weights, small biases. BN: gamma, beta, running mean and
    variance all random, so a converter that drops or swaps any of them is
    caught; the last BN of each residual branch gets a small gamma so that
    50 layers do not blow the activations up.
    """
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor, low, high):
        tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)

    with torch.no_grad():
        for name, layer in module.named_modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator)
                                   * np.sqrt(2.0 / fan_in))
                if layer.bias is not None:
                    uniform(layer.bias, -0.1, 0.1)
            elif isinstance(layer, nn.BatchNorm2d):
                residual_end = name.endswith(("bn3", "downsample.1"))
                uniform(layer.weight, *((0.1, 0.4) if residual_end else (0.4, 1.0)))
                uniform(layer.bias, -0.2, 0.2)
                uniform(layer.running_mean, -0.3, 0.3)
                uniform(layer.running_var, 0.5, 2.0)
                layer.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,),
                                                                  generator=generator)))
    return module.eval()
